#ifndef EXSAL_IO_EXPRESSION_MATRIX_HPP
#define EXSAL_IO_EXPRESSION_MATRIX_HPP

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"

#include <string>
#include <vector>

namespace exsal {

// An expression matrix in memory: genes x cells (one column = one cell), float.
struct ExpressionMatrix {
    MatrixF values;                  // genes x cells
    std::vector<std::string> genes;  // one symbol per row
    std::vector<std::string> cells;  // one id per column
    std::vector<std::string> groups; // one label per column, or empty when the data has none

    Index n_genes() const noexcept { return values.rows(); }
    Index n_cells() const noexcept { return values.cols(); }
    bool has_groups() const noexcept { return !groups.empty(); }

    // Throws ArgumentError(where, ...) when the names do not match the matrix's dimensions.
    void check_consistent(const std::string& where) const {
        if (static_cast<Index>(genes.size()) != values.rows())
            throw ArgumentError(where, std::to_string(genes.size()) + " gene names for " +
                                           std::to_string(values.rows()) + " matrix rows");
        if (static_cast<Index>(cells.size()) != values.cols())
            throw ArgumentError(where, std::to_string(cells.size()) + " cell ids for " +
                                           std::to_string(values.cols()) + " matrix columns");
        if (!groups.empty() && static_cast<Index>(groups.size()) != values.cols())
            throw ArgumentError(where, std::to_string(groups.size()) + " group labels for " +
                                           std::to_string(values.cols()) + " cells");
    }
};

} // namespace exsal

#endif // EXSAL_IO_EXPRESSION_MATRIX_HPP
