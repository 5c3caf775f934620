#ifndef EXSAL_CORE_ERROR_HPP
#define EXSAL_CORE_ERROR_HPP

// The errors the library throws on purpose. Each may say which setting or input of the call it is
// about (its subject) and which settings the user could change (hints); both are typed, so a
// program that exposes the settings under its own names (command-line options, file names) maps
// them without reading messages, and the library never needs to know those names.

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace exsal {

// Settings and inputs of library calls that errors refer to.
enum class Setting : unsigned char {
    none,
    // ExpressionReadOptions
    id_column,
    group_column,
    genes_in_rows,
    sum_duplicates,
    allow_negative,
    layer,       // H5adReadOptions::layer
    cell_groups, // the cell-groups file
    // PreprocessOptions
    validation_fraction,
    filter_threshold,
    // Inputs of a call: the expression data, the gene-set collection, the model file, the output folder
    expression_data,
    gene_sets,
    model_file,
    output_folder,
    output_force, // OutputFolder::open's `force`
};

// The library's own name of a setting, as messages show it by default.
inline const char* setting_name(Setting s) noexcept {
    switch (s) {
    case Setting::id_column: return "ExpressionReadOptions::id_column";
    case Setting::group_column: return "ExpressionReadOptions::group_column";
    case Setting::genes_in_rows: return "ExpressionReadOptions::genes_in_rows";
    case Setting::sum_duplicates: return "ExpressionReadOptions::sum_duplicates";
    case Setting::allow_negative: return "ExpressionReadOptions::allow_negative";
    case Setting::layer: return "H5adReadOptions::layer";
    case Setting::cell_groups: return "the cell-groups file";
    case Setting::validation_fraction: return "PreprocessOptions::validation_fraction";
    case Setting::filter_threshold: return "PreprocessOptions::filter_threshold";
    case Setting::expression_data: return "the expression data";
    case Setting::gene_sets: return "the gene sets";
    case Setting::model_file: return "the model file";
    case Setting::output_folder: return "the output folder";
    case Setting::output_force: return "force";
    case Setting::none: break;
    }
    return "";
}

// "set <setting> <advice>", e.g. {Setting::sum_duplicates, "to add them up"}.
struct SettingHint {
    Setting setting = Setting::none;
    std::string advice;
};

// Names a setting for a reader of messages; "" leaves a hint out (the setting is not offered).
using SettingNamer = std::function<std::string(Setting)>;

// Base of every error the library throws on purpose.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : Error(message, Setting::none, {}) {}
    Error(const std::string& body, Setting subject, std::vector<SettingHint> hints)
        : std::runtime_error(body + hint_text(hints, [](Setting s) { return std::string(setting_name(s)); })),
          m_body(body), m_subject(subject), m_hints(std::move(hints)) {}

    // The setting or input the error is about (Setting::none: not one of them).
    Setting subject() const noexcept { return m_subject; }
    const std::vector<SettingHint>& hints() const noexcept { return m_hints; }
    // what() without its hints.
    const std::string& body() const noexcept { return m_body; }
    // what() with the hints' settings named by `name` (hints it names "" are left out).
    std::string describe(const SettingNamer& name) const { return m_body + hint_text(m_hints, name); }

private:
    // "; set A to x, or B to y"
    static std::string hint_text(const std::vector<SettingHint>& hints, const SettingNamer& name) {
        std::string s;
        for (const SettingHint& h : hints) {
            const std::string n = name(h.setting);
            if (n.empty()) continue;
            s += (s.empty() ? "; set " : ", or ") + n + " " + h.advice;
        }
        return s;
    }
    std::string m_body;
    Setting m_subject;
    std::vector<SettingHint> m_hints;
};

// Bad content or an unreadable file. what() reads like a compiler diagnostic:
// "path:line:column: message" (line and column left out where they are 0, i.e. unknown).
class FileError : public Error {
public:
    FileError(std::string path, std::size_t line, std::size_t column, const std::string& message,
              std::vector<SettingHint> hints = {})
        : Error(format(path, line, column, message), Setting::none, std::move(hints)), m_path(std::move(path)),
          m_line(line), m_column(column) {}
    FileError(std::string path, const std::string& message) : FileError(std::move(path), 0, 0, message) {}

    const std::string& path() const noexcept { return m_path; }
    std::size_t line() const noexcept { return m_line; }     // 1-based, 0 = not applicable
    std::size_t column() const noexcept { return m_column; } // 1-based, 0 = not applicable

private:
    static std::string format(const std::string& path, std::size_t line, std::size_t column,
                              const std::string& message) {
        std::string s = path;
        if (line > 0) {
            s += ":" + std::to_string(line);
            if (column > 0) s += ":" + std::to_string(column);
        }
        return s + ": " + message;
    }
    std::string m_path;
    std::size_t m_line;
    std::size_t m_column;
};

// A caller passed an invalid argument. The message starts with `where`: the function (or, in a
// program, the option) at fault; `subject` says which setting or input it concerns, for callers
// that name it their own way.
class ArgumentError : public Error {
public:
    ArgumentError(const std::string& where, const std::string& message, Setting subject = Setting::none,
                  std::vector<SettingHint> hints = {})
        : Error(where + ": " + message, subject, std::move(hints)), m_where(where), m_message(message) {}

    const std::string& where() const noexcept { return m_where; }     // function or option
    const std::string& message() const noexcept { return m_message; } // body() without "where: "

private:
    std::string m_where;
    std::string m_message;
};

// A computation left the finite numbers (e.g. a diverging training run).
class NumericError : public Error {
public:
    explicit NumericError(const std::string& message) : Error(message) {}
};

} // namespace exsal

#endif // EXSAL_CORE_ERROR_HPP
