// The umbrella headers compile on their own, alongside every other header, and the version is one.
// exsal/exsal.hpp (the library) pulls in no report or pipeline code: those are the other two.
#include "exsal/exsal.hpp"
#ifdef EXSAL_REPORT_SVG_HPP
#error "exsal/exsal.hpp includes the SVG writer"
#endif
#ifdef EXSAL_REPORT_JSON_HPP
#error "exsal/exsal.hpp includes the JSON writer"
#endif
#include "exsal/pipeline.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>

TEST_CASE("the version macro is the one CMake reads") {
    std::ifstream in(std::string(EXSAL_SOURCE_DIR) + "/include/exsal/version.hpp");
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    auto number = [&](const char* name) {
        std::smatch m;
        const std::regex re(std::string("#define ") + name + " ([0-9]+)");
        REQUIRE(std::regex_search(text, m, re));
        return m[1].str();
    };
    CHECK(std::string(EXSAL_VERSION_STRING) ==
          number("EXSAL_VERSION_MAJOR") + "." + number("EXSAL_VERSION_MINOR") + "." + number("EXSAL_VERSION_PATCH"));
}
