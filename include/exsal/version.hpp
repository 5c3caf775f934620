#ifndef EXSAL_VERSION_HPP
#define EXSAL_VERSION_HPP

// The one place the version lives; CMakeLists.txt parses these three lines.
#define EXSAL_VERSION_MAJOR 0
#define EXSAL_VERSION_MINOR 1
#define EXSAL_VERSION_PATCH 0

#define EXSAL_STRINGIFY_DETAIL(x) #x
#define EXSAL_STRINGIFY(x) EXSAL_STRINGIFY_DETAIL(x)
#define EXSAL_VERSION_STRING                                                                       \
    EXSAL_STRINGIFY(EXSAL_VERSION_MAJOR)                                                           \
    "." EXSAL_STRINGIFY(EXSAL_VERSION_MINOR) "." EXSAL_STRINGIFY(EXSAL_VERSION_PATCH)

#endif // EXSAL_VERSION_HPP
