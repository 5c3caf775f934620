#ifndef EXSAL_CORE_ERROR_HPP
#define EXSAL_CORE_ERROR_HPP

#include <cstddef>
#include <stdexcept>
#include <string>

namespace exsal {

// Base of every error the library throws on purpose.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Bad content or an unreadable file. what() reads like a compiler diagnostic:
// "path:line:column: message" (line and column left out where they are 0, i.e. unknown).
class FileError : public Error {
public:
    FileError(std::string path, std::size_t line, std::size_t column, const std::string& message)
        : Error(format(path, line, column, message)), m_path(std::move(path)), m_line(line),
          m_column(column) {}
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

// A caller passed an invalid argument; the message starts with the function or option name.
class ArgumentError : public Error {
public:
    ArgumentError(const std::string& where, const std::string& message)
        : Error(where + ": " + message), m_where(where), m_message(message) {}

    const std::string& where() const noexcept { return m_where; }     // function or option
    const std::string& message() const noexcept { return m_message; } // what() without "where: "

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
