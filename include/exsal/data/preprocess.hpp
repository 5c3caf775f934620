#ifndef EXSAL_DATA_PREPROCESS_HPP
#define EXSAL_DATA_PREPROCESS_HPP

// The reference preprocessing of Kinalis et al. (2019) and their code, one named function per step:
//   1. split_train_validation   shuffle the cells once with the seed, hold out the last fraction;
//   2. filter_genes_by_max      keep genes whose value exceeds the threshold (2) in at least one cell;
//   3. (in prepare)             upper-case the gene symbols, refusing two that become equal;
//   4. restrict_to_gene_sets    keep genes that belong to at least one set of the collection;
//   5. Preprocessor::fit        fit the input transform on the training cells only.
// prepare() runs them in this order, on row indices and names, so that the values are copied once.
// The transform produces the network INPUT only: the Poisson
// target of the reconstruction loss always stays the untransformed values.
// A fitted Preprocessor is stored with the model (serialize / deserialize) so that new cells are
// aligned to the model's genes (align) and transformed identically (transform).

#include "exsal/core/error.hpp"
#include "exsal/core/process_group.hpp"
#include "exsal/core/random.hpp"
#include "exsal/core/serialize.hpp"
#include "exsal/core/text.hpp"
#include "exsal/core/types.hpp"
#include "exsal/io/expression_matrix.hpp"
#include "exsal/io/gene_set.hpp"
#include "exsal/io/sparse_expression.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace exsal {

namespace detail::prep {

// "A, B, C, ..." with at most `n` entries, for error messages.
inline std::string first_few(const std::vector<std::string>& v, std::size_t n = 5) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < n; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > n) s += ", ...";
    return s.empty() ? "(none)" : s;
}

// Throws ArgumentError(where, ...) when two symbols are equal after upper-casing.
inline void check_unique_upper(const std::vector<std::string>& genes, const std::string& where) {
    std::unordered_map<std::string, std::size_t> seen;
    seen.reserve(genes.size());
    for (std::size_t i = 0; i < genes.size(); ++i) {
        auto [it, inserted] = seen.emplace(upper_cased_ascii(genes[i]), i);
        if (!inserted)
            throw ArgumentError(where, "gene symbols '" + genes[it->second] + "' (row " +
                                           std::to_string(it->second + 1) + ") and '" + genes[i] + "' (row " +
                                           std::to_string(i + 1) + ") are the same symbol after upper-casing",
                                Setting::expression_data);
    }
}

} // namespace detail::prep

// ---------------------------------------------------------------------------------------------
// Step 1: train / validation split.

// Column indices of the training and validation cells, each in the order of the shuffled cells.
struct Split {
    std::vector<Index> train;      // first n - n_validation entries of the permutation
    std::vector<Index> validation; // last n_validation = round(fraction * n) entries
};

// Shuffles 0..n_cells-1 once with Rng(seed).permutation and holds out the last
// round(validation_fraction * n_cells) cells (reference: 0.05). A fraction of 0 gives no validation
// cells. Throws ArgumentError when n_cells < 1, the fraction is outside [0, 1), or a side would be
// empty although the fraction is > 0.
inline Split split_train_validation(Index n_cells, double validation_fraction, std::uint64_t seed) {
    const std::string where = "split_train_validation";
    if (n_cells < 1)
        throw ArgumentError(where, "need at least one cell, got " + std::to_string(n_cells), Setting::expression_data);
    if (!(validation_fraction >= 0.0 && validation_fraction < 1.0))
        throw ArgumentError(where, "validation fraction must be in [0, 1), got " + std::to_string(validation_fraction),
                            Setting::validation_fraction);
    const Index n_validation = static_cast<Index>(std::llround(validation_fraction * static_cast<double>(n_cells)));
    const Index n_train = n_cells - n_validation;
    if (validation_fraction > 0.0 && (n_validation == 0 || n_train == 0))
        throw ArgumentError(where, "a validation fraction of " + std::to_string(validation_fraction) + " of " +
                                       std::to_string(n_cells) + " cells leaves " + std::to_string(n_train) +
                                       " training and " + std::to_string(n_validation) +
                                       " validation cells; both sides need at least one (use fraction 0 for no validation)",
                            Setting::validation_fraction);
    Rng rng(seed);
    const std::vector<std::int64_t> perm = rng.permutation(static_cast<std::int64_t>(n_cells));
    Split split;
    split.train.assign(perm.begin(), perm.begin() + n_train);
    split.validation.assign(perm.begin() + n_train, perm.end());
    return split;
}

// The entries of `sorted` (ascending columns) within the cells `share` (count -1: all), and where
// they sit in it.
inline CellRange positions_in(const std::vector<Index>& sorted, CellRange share) {
    if (share.count < 0) return {0, static_cast<std::int64_t>(sorted.size())};
    const auto b = std::lower_bound(sorted.begin(), sorted.end(), static_cast<Index>(share.first));
    const auto e = std::lower_bound(b, sorted.end(), static_cast<Index>(share.first + share.count));
    return {static_cast<std::int64_t>(b - sorted.begin()), static_cast<std::int64_t>(e - b)};
}

inline std::vector<Index> columns_in(const std::vector<Index>& sorted, CellRange share) {
    const CellRange at = positions_in(sorted, share);
    return std::vector<Index>(sorted.begin() + at.first, sorted.begin() + at.first + at.count);
}

// ---------------------------------------------------------------------------------------------
// Step 2: gene filter.

// Rows (ascending) whose value is strictly greater than `threshold` in at least one cell
// (reference threshold 2). Dense (ExpressionMatrix) or sparse (SparseExpression) data. Throws
// ArgumentError when no gene survives.
//
// Data-parallel (`processes`): each process gives the cells `share` it holds (SparseExpression
// holding them, or dense data holding all), and the maxima are the largest over all processes.
template <class Expression>
std::vector<Index> filter_genes_by_max(const Expression& m, float threshold = 2.0f, ProcessGroup* processes = nullptr,
                                       CellRange share = {0, -1}) {
    const std::string where = "filter_genes_by_max";
    m.check_consistent(where);
    std::vector<Index> kept;
    VectorF maxima = share.count < 0 ? gene_maxima(m) : gene_maxima(m, share); // -inf without cells
    if (processes) {
        std::vector<double> d(maxima.data(), maxima.data() + maxima.size());
        processes->max(d.data(), static_cast<Index>(d.size()));
        for (Index g = 0; g < maxima.size(); ++g) maxima(g) = static_cast<float>(d[static_cast<std::size_t>(g)]);
    }
    for (Index g = 0; g < m.n_genes(); ++g)
        if (maxima(g) > threshold) kept.push_back(g);
    if (kept.empty())
        throw ArgumentError(where, "no gene has a value > " + std::to_string(threshold) + " in any cell (" +
                                       std::to_string(m.n_genes()) + " genes, " + std::to_string(m.n_cells()) +
                                       " cells, largest value " +
                                       (m.n_genes() > 0 && m.n_cells() > 0 ? std::to_string(maxima.maxCoeff())
                                                                           : std::string("none")) +
                                       "); the reference filter expects counts, lower the threshold for scaled or log data",
                            Setting::filter_threshold);
    return kept;
}

// ---------------------------------------------------------------------------------------------
// Step 4: restriction to a gene-set collection.

// Rows (ascending) whose symbol, upper-cased, is a member of at least one set of `sets`
// (set members upper-cased too). Throws ArgumentError when the collection is empty or no gene
// overlaps, showing the first symbols of each side so that a case or identifier mismatch shows.
inline std::vector<Index> restrict_to_gene_sets(const std::vector<std::string>& genes, const GeneSetCollection& sets) {
    const std::string where = "restrict_to_gene_sets";
    if (sets.empty()) throw ArgumentError(where, "the gene-set collection is empty", Setting::gene_sets);
    std::unordered_set<std::string> members;
    std::vector<std::string> first_members;
    for (const auto& s : sets)
        for (const auto& g : s.genes) {
            if (members.insert(detail::upper_cased_ascii(g)).second && first_members.size() < 6) first_members.push_back(g);
        }
    std::vector<Index> kept;
    for (std::size_t i = 0; i < genes.size(); ++i)
        if (members.count(detail::upper_cased_ascii(genes[i]))) kept.push_back(static_cast<Index>(i));
    if (kept.empty())
        throw ArgumentError(where, "none of the " + std::to_string(genes.size()) + " genes of the data is in any of the " +
                                       std::to_string(sets.size()) + " gene sets (" + std::to_string(members.size()) +
                                       " distinct genes); data genes: " + detail::prep::first_few(genes) +
                                       "; set genes: " + detail::prep::first_few(first_members) +
                                       " (check species, identifier type and symbol case)",
                            Setting::gene_sets);
    return kept;
}

template <class Expression, class = decltype(std::declval<const Expression&>().n_cells())>
std::vector<Index> restrict_to_gene_sets(const Expression& m, const GeneSetCollection& sets) {
    m.check_consistent("restrict_to_gene_sets");
    return restrict_to_gene_sets(m.genes, sets);
}

// ---------------------------------------------------------------------------------------------
// Step 5: input transforms.

enum class InputTransform : std::uint32_t {
    none = 0,     // y = x (the reference fed the values unscaled)
    log1p = 1,    // y = log(1 + x)
    minmax = 2,   // y = (x - min_g) / (max_g - min_g), min/max of the raw values over the training cells; 0 if max_g == min_g
    cpm_log1p = 3 // y = log(1 + x * scale / sum_g x), scale 1e4 (counts per 10k), per cell over the model genes
};

inline const char* input_transform_name(InputTransform t) {
    switch (t) {
    case InputTransform::none: return "none";
    case InputTransform::log1p: return "log1p";
    case InputTransform::minmax: return "minmax";
    case InputTransform::cpm_log1p: return "cpm_log1p";
    }
    return "unknown";
}

// "none", "log1p", "minmax", "cpm_log1p" (case-insensitive); throws ArgumentError otherwise.
inline InputTransform parse_input_transform(const std::string& name) {
    const std::string u = detail::upper_cased_ascii(name);
    for (InputTransform t : {InputTransform::none, InputTransform::log1p, InputTransform::minmax, InputTransform::cpm_log1p})
        if (u == detail::upper_cased_ascii(input_transform_name(t))) return t;
    throw ArgumentError("parse_input_transform", "unknown input transform '" + name +
                                                     "' (expected none, log1p, minmax or cpm_log1p)");
}

// The fitted preprocessing state stored with a model: the model's genes in order, the input
// transform and its parameters, and for the record the filter threshold and gene-set label.
//   minmax:    per gene min and max of the raw training values; new values outside the training
//              range map outside [0, 1] (not clipped); genes constant in training map to 0.
//   cpm_log1p: the library size is the sum over the model genes of the cell (genes zero-filled by
//              align count as 0); cells with library size 0 map to 0.
class Preprocessor {
public:
    static constexpr double default_cpm_scale = 1e4;

    Preprocessor() = default;

    // Fits `transform` on the training cells (genes x cells, raw values, genes already filtered,
    // upper-cased and in model order). Throws ArgumentError on empty or duplicate genes, on no
    // training cells for minmax, or on a non-positive cpm scale.
    static Preprocessor fit(const ExpressionMatrix& train_cells, InputTransform transform,
                            double cpm_scale = default_cpm_scale) {
        const std::string where = "Preprocessor::fit";
        train_cells.check_consistent(where);
        if (train_cells.n_genes() == 0) throw ArgumentError(where, "no genes");
        detail::prep::check_unique_upper(train_cells.genes, where);
        if (!(cpm_scale > 0.0 && std::isfinite(cpm_scale)))
            throw ArgumentError(where, "cpm scale must be positive and finite, got " + std::to_string(cpm_scale));
        Preprocessor p;
        p.m_genes.reserve(train_cells.genes.size());
        for (const auto& g : train_cells.genes) p.m_genes.push_back(detail::upper_cased_ascii(g));
        p.m_transform = transform;
        p.m_cpm_scale = cpm_scale;
        if (transform == InputTransform::minmax) {
            if (train_cells.n_cells() == 0) throw ArgumentError(where, "minmax needs at least one training cell");
            if (!train_cells.values.allFinite()) throw ArgumentError(where, "minmax needs finite values");
            p.m_min = train_cells.values.rowwise().minCoeff(); // G, min over training cells
            p.m_max = train_cells.values.rowwise().maxCoeff(); // G, max over training cells
        }
        return p;
    }

    // The same fit from the cells `train` of any data, gathered block by block through `cells`
    // (the model's genes, named `genes` in model order), so the training cells are never held
    // whole; with `centre`, also the mean transformed input over them (summed in double, cell by
    // cell in `train` order). Throws as fit() does.
    // Data-parallel (`processes`): `train` are this process's training cells; minima, maxima and
    // the centre's sums and cell count are combined over all processes, so every process fits
    // the same preprocessing (the centre to double rounding of the one-process sum).
    template <class Expression>
    static Preprocessor fit(const CellGather<Expression>& cells, const std::vector<Index>& train,
                            const std::vector<std::string>& genes, InputTransform transform, double cpm_scale,
                            bool centre, ProcessGroup* processes = nullptr) {
        const std::string where = "Preprocessor::fit";
        if (cells.rows() == 0) throw ArgumentError(where, "no genes");
        if (static_cast<Index>(genes.size()) != cells.rows())
            throw ArgumentError(where, std::to_string(genes.size()) + " gene names for " + std::to_string(cells.rows()) +
                                           " genes");
        detail::prep::check_unique_upper(genes, where);
        if (!(cpm_scale > 0.0 && std::isfinite(cpm_scale)))
            throw ArgumentError(where, "cpm scale must be positive and finite, got " + std::to_string(cpm_scale));
        Preprocessor p;
        for (const auto& g : genes) p.m_genes.push_back(detail::upper_cased_ascii(g));
        p.m_transform = transform;
        p.m_cpm_scale = cpm_scale;
        const Index G = cells.rows();
        std::int64_t n_train = static_cast<std::int64_t>(train.size());
        if (processes) processes->sum(&n_train, 1);
        if (transform == InputTransform::minmax) {
            if (n_train == 0) throw ArgumentError(where, "minmax needs at least one training cell");
            p.m_min = VectorF::Constant(G, std::numeric_limits<float>::infinity());
            p.m_max = VectorF::Constant(G, -std::numeric_limits<float>::infinity());
            std::int64_t bad = 0; // every process reaches the sums below, also with bad values
            if (!train.empty())
                for_each_block(cells, train, [&](Eigen::Ref<MatrixF> block, Index) {
                    // Each thread its slice of genes (min and max are exact in any order).
                    std::int64_t block_bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : block_bad) if (block.size() >= (Index(1) << 15))
                    for (Index g0 = 0; g0 < G; g0 += 64) {
                        const Index ng = std::min<Index>(64, G - g0);
                        const auto rows = block.middleRows(g0, ng);
                        if (!detail::all_finite(rows)) {
                            block_bad = 1;
                            continue;
                        }
                        p.m_min.segment(g0, ng) = p.m_min.segment(g0, ng).cwiseMin(rows.rowwise().minCoeff());
                        p.m_max.segment(g0, ng) = p.m_max.segment(g0, ng).cwiseMax(rows.rowwise().maxCoeff());
                    }
                    if (block_bad > 0) bad = 1;
                });
            if (processes) {
                processes->sum(&bad, 1);
                std::vector<double> both(static_cast<std::size_t>(2 * G));
                for (Index g = 0; g < G; ++g) {
                    both[static_cast<std::size_t>(g)] = -static_cast<double>(p.m_min(g));
                    both[static_cast<std::size_t>(G + g)] = static_cast<double>(p.m_max(g));
                }
                processes->max(both.data(), 2 * G);
                for (Index g = 0; g < G; ++g) {
                    p.m_min(g) = static_cast<float>(-both[static_cast<std::size_t>(g)]);
                    p.m_max(g) = static_cast<float>(both[static_cast<std::size_t>(G + g)]);
                }
            }
            if (bad > 0) throw ArgumentError(where, "minmax needs finite values");
        }
        if (centre && n_train > 0) {
            VectorD sum = VectorD::Zero(G);
            if (!train.empty())
                for_each_block(cells, train, [&](Eigen::Ref<MatrixF> block, Index) {
                    // The cells transformed on all threads, then added in cell order (the same sum
                    // for any thread count).
#pragma omp parallel for schedule(static) if (block.size() >= (Index(1) << 15))
                    for (Index j = 0; j < block.cols(); ++j) p.transform_column(block.col(j).data(), block.col(j).data());
                    for (Index j = 0; j < block.cols(); ++j) sum += block.col(j).cast<double>();
                });
            if (processes) processes->sum(sum.data(), G);
            p.set_centre((sum / static_cast<double>(n_train)).cast<float>());
        }
        return p;
    }

    // Calls f(block, first) for the cells `columns` in blocks of up to 256 (block = genes x cells
    // columns[first .. first + block.cols()), raw values), in order.
    template <class Expression, class F>
    static void for_each_block(const CellGather<Expression>& cells, const std::vector<Index>& columns, F&& f) {
        constexpr Index block_cells = 256;
        MatrixF buffer(cells.rows(), std::min<Index>(block_cells, static_cast<Index>(columns.size())));
        for (Index first = 0; first < static_cast<Index>(columns.size()); first += block_cells) {
            const Index n = std::min<Index>(block_cells, static_cast<Index>(columns.size()) - first);
            cells.gather(columns.data() + first, n, buffer);
            f(Eigen::Ref<MatrixF>(buffer.leftCols(n)), first);
        }
    }

    // Network input from raw values (genes x cells, genes in model order). Throws ArgumentError
    // when the row count differs, or for log1p / cpm_log1p when a value is negative or not finite.
    MatrixF transform(ConstMatrixRef<float> values) const {
        MatrixF out(values.rows(), values.cols());
        transform_into(values, out, "Preprocessor::transform");
        return out;
    }
    // The same, overwriting `values` (no second copy of a large matrix).
    void transform_in_place(MatrixF& values) const { transform_into(values, values, "Preprocessor::transform_in_place"); }

private:
    // out = transform(values); out may be values itself (every entry is read before it is written).
    void transform_into(ConstMatrixRef<float> values, Eigen::Ref<MatrixF> out, const std::string& where) const {
        if (values.rows() != n_genes())
            throw ArgumentError(where, "expected " + std::to_string(n_genes()) + " genes (rows) in model order, got " +
                                           std::to_string(values.rows()),
                                Setting::expression_data);
        if ((m_transform == InputTransform::log1p || m_transform == InputTransform::cpm_log1p) &&
            !(values.array() >= 0.0f && values.array().isFinite()).all()) {
            Index g = 0, c = 0; // the first offending entry, in storage order (one exists)
            for (Index i = 0; i < values.size(); ++i) {
                g = i % values.rows();
                c = i / values.rows();
                if (!(values(g, c) >= 0.0f && std::isfinite(values(g, c)))) break;
            }
            throw ArgumentError(where, std::string(input_transform_name(m_transform)) +
                                           " needs finite non-negative values; gene " + m_genes[static_cast<std::size_t>(g)] +
                                           " of cell " + std::to_string(c + 1) + " is " + std::to_string(values(g, c)),
                                Setting::expression_data);
        }
        const Index n_cells = values.cols();
#pragma omp parallel for schedule(static)
        for (Index c = 0; c < n_cells; ++c) transform_column(values.col(c).data(), out.col(c).data());
    }

public:
    // One cell: out = transform(raw) minus the centre, for the n_genes() raw values of one cell in
    // model order. No checks (transform() checks; the training batches are checked when prepared).
    // out may be raw itself. Every transformed input of the library goes through here, so the
    // batches made on the fly during training equal a transform of the whole matrix bit for bit.
    void transform_column(const float* raw, float* out) const {
        const Index n = n_genes();
        switch (m_transform) {
        case InputTransform::none:
            if (out != raw) std::copy(raw, raw + n, out);
            break;
        case InputTransform::log1p:
            for (Index g = 0; g < n; ++g) out[g] = std::log1p(raw[g]); // y = log(1 + x)
            break;
        case InputTransform::minmax:
            for (Index g = 0; g < n; ++g) {
                const float range = m_max(g) - m_min(g);
                out[g] = range > 0.0f ? (raw[g] - m_min(g)) / range : 0.0f; // y = (x - min) / (max - min)
            }
            break;
        case InputTransform::cpm_log1p: {
            double library = 0.0; // sum over model genes of the cell
            for (Index g = 0; g < n; ++g) library += raw[g];
            const double f = library > 0.0 ? m_cpm_scale / library : 0.0;
            for (Index g = 0; g < n; ++g)
                out[g] = static_cast<float>(std::log1p(static_cast<double>(raw[g]) * f)); // y = log(1 + x scale / lib)
            break;
        }
        }
        if (m_centre.size() > 0)
            for (Index g = 0; g < n; ++g) out[g] -= m_centre(g); // y - mean over the training cells
    }

public:

    // Which gene of new cells feeds each model gene.
    struct GeneMatch {
        std::vector<Index> source;              // per model gene: its row (gene) in the new cells, -1: missing
        Index genes_missing = 0;                // model genes the new data lacks (zero-filled)
        Index genes_extra = 0;                  // genes of the new data the model does not know (ignored)
        std::vector<std::string> missing_genes; // their symbols, in model order
    };

    // New cells' raw values reordered to the model's genes.
    struct Aligned {
        MatrixF values;                         // model genes x new cells, raw (not transformed); missing genes are 0
        Index genes_missing = 0;                // model genes the new data lacks (zero-filled)
        Index genes_extra = 0;                  // genes of the new data the model does not know (ignored)
        std::vector<std::string> missing_genes; // their symbols, in model order
    };

    // Matches new cells' genes to the model's by upper-cased symbol. Throws ArgumentError when the
    // new data has duplicate symbols (after upper-casing) or shares no gene with the model.
    // Dense (ExpressionMatrix) or sparse (SparseExpression) cells.
    template <class Expression> GeneMatch match(const Expression& new_cells) const {
        const std::string where = "Preprocessor::align";
        new_cells.check_consistent(where);
        if (n_genes() == 0) throw ArgumentError(where, "the preprocessor is not fitted (no genes)");
        detail::prep::check_unique_upper(new_cells.genes, where);
        std::unordered_map<std::string, Index> row_of;
        row_of.reserve(new_cells.genes.size());
        for (std::size_t i = 0; i < new_cells.genes.size(); ++i)
            row_of.emplace(detail::upper_cased_ascii(new_cells.genes[i]), static_cast<Index>(i));
        GeneMatch m;
        m.source.assign(static_cast<std::size_t>(n_genes()), -1);
        Index matched = 0;
        for (Index g = 0; g < n_genes(); ++g) {
            const auto it = row_of.find(m_genes[static_cast<std::size_t>(g)]);
            if (it == row_of.end()) {
                m.missing_genes.push_back(m_genes[static_cast<std::size_t>(g)]);
                continue;
            }
            m.source[static_cast<std::size_t>(g)] = it->second;
            ++matched;
        }
        if (matched == 0)
            throw ArgumentError(where, "none of the model's " + std::to_string(n_genes()) + " genes is among the " +
                                           std::to_string(new_cells.n_genes()) + " genes of the new cells; model genes: " +
                                           detail::prep::first_few(m_genes) + "; new genes: " +
                                           detail::prep::first_few(new_cells.genes),
                                Setting::expression_data);
        m.genes_missing = static_cast<Index>(m.missing_genes.size());
        m.genes_extra = new_cells.n_genes() - matched;
        return m;
    }

    // match(), then all new cells gathered dense: values(g, c) = new(source[g], c), 0 where missing.
    template <class Expression> Aligned align(const Expression& new_cells) const {
        GeneMatch m = match(new_cells);
        Aligned a;
        std::vector<Index> all_cells(static_cast<std::size_t>(new_cells.n_cells()));
        std::iota(all_cells.begin(), all_cells.end(), Index(0));
        gather_block(new_cells, m.source, all_cells, a.values);
        a.genes_missing = m.genes_missing;
        a.genes_extra = m.genes_extra;
        a.missing_genes = std::move(m.missing_genes);
        return a;
    }

    // Binary state: magic "EXSALPRE", u32 version, fields, u64 FNV-1a of everything before it.
    std::string serialize() const {
        detail::ByteWriter w;
        for (char ch : std::string_view(magic, 8)) w.u8(static_cast<std::uint8_t>(ch));
        w.u32(format_version);
        w.strings(m_genes);
        w.u32(static_cast<std::uint32_t>(m_transform));
        w.f64(m_cpm_scale);
        w.f64(m_filter_threshold);
        w.str(m_gene_sets);
        w.f64s(m_min);
        w.f64s(m_max);
        w.f64s(m_centre); // version 2
        const std::uint64_t checksum = detail::fnv1a64(w.bytes());
        w.u64(checksum);
        return w.take();
    }

    // Reads serialize()'s bytes; anything malformed (bad magic, version, checksum, sizes, values,
    // trailing bytes) throws FileError(origin, ...).
    static Preprocessor deserialize(std::string_view bytes, const std::string& origin) {
        const auto fail = [&](const std::string& msg) -> void { throw FileError(origin, "preprocessor state: " + msg); };
        if (bytes.size() < 8 || bytes.substr(0, 8) != std::string_view(magic, 8))
            fail("missing magic 'EXSALPRE' (not exsal preprocessing state)");
        if (bytes.size() < 8 + 4 + 8) fail("truncated (" + std::to_string(bytes.size()) + " bytes)");
        {
            detail::ByteReader tail(bytes.substr(bytes.size() - 8), origin);
            if (tail.u64() != detail::fnv1a64(bytes.substr(0, bytes.size() - 8)))
                fail("checksum mismatch (corrupt or truncated)");
        }
        detail::ByteReader r(bytes.substr(0, bytes.size() - 8), origin);
        for (int i = 0; i < 8; ++i) r.u8();
        const std::uint32_t version = r.u32();
        if (version != format_version && version != 1)
            fail("unsupported version " + std::to_string(version) + " (this build reads " + std::to_string(format_version) + ")");
        Preprocessor p;
        p.m_genes = r.strings();
        const std::uint32_t t = r.u32();
        if (t > static_cast<std::uint32_t>(InputTransform::cpm_log1p)) fail("unknown input transform " + std::to_string(t));
        p.m_transform = static_cast<InputTransform>(t);
        p.m_cpm_scale = r.f64();
        p.m_filter_threshold = r.f64();
        p.m_gene_sets = r.str();
        const std::vector<double> mins = r.f64s(), maxs = r.f64s();
        const std::vector<double> centre = version >= 2 ? r.f64s() : std::vector<double>();
        if (r.remaining() != 0) fail(std::to_string(r.remaining()) + " unexpected trailing bytes");
        if (p.m_genes.empty()) fail("no genes");
        std::unordered_set<std::string> seen;
        for (const auto& g : p.m_genes)
            if (g.empty() || g != detail::upper_cased_ascii(g) || !seen.insert(g).second)
                fail("invalid or duplicate gene symbol '" + g + "'");
        if (!(p.m_cpm_scale > 0.0 && std::isfinite(p.m_cpm_scale))) fail("invalid cpm scale");
        const std::size_t expected = p.m_transform == InputTransform::minmax ? p.m_genes.size() : 0;
        if (mins.size() != expected || maxs.size() != expected)
            fail("minmax parameters for " + std::to_string(mins.size()) + " genes, expected " + std::to_string(expected));
        p.m_min.resize(static_cast<Index>(expected));
        p.m_max.resize(static_cast<Index>(expected));
        for (std::size_t i = 0; i < expected; ++i) {
            if (!(std::isfinite(mins[i]) && std::isfinite(maxs[i]) && mins[i] <= maxs[i])) fail("invalid minmax parameters");
            p.m_min(static_cast<Index>(i)) = static_cast<float>(mins[i]);
            p.m_max(static_cast<Index>(i)) = static_cast<float>(maxs[i]);
        }
        if (!centre.empty() && centre.size() != p.m_genes.size())
            fail("input centre for " + std::to_string(centre.size()) + " genes, expected " + std::to_string(p.m_genes.size()));
        p.m_centre.resize(static_cast<Index>(centre.size()));
        for (std::size_t i = 0; i < centre.size(); ++i) {
            if (!std::isfinite(centre[i])) fail("invalid input centre");
            p.m_centre(static_cast<Index>(i)) = static_cast<float>(centre[i]);
        }
        return p;
    }

    Index n_genes() const noexcept { return static_cast<Index>(m_genes.size()); }
    const std::vector<std::string>& genes() const noexcept { return m_genes; }
    InputTransform input_transform() const noexcept { return m_transform; }
    double cpm_scale() const noexcept { return m_cpm_scale; }
    const VectorF& minimum() const noexcept { return m_min; } // minmax only, else empty
    const VectorF& maximum() const noexcept { return m_max; } // minmax only, else empty
    // Mean transformed input per gene over the training cells, subtracted after the transform;
    // empty when the input is not centred. Throws ArgumentError for a wrong size or a non-finite value.
    const VectorF& centre() const noexcept { return m_centre; }
    void set_centre(VectorF centre) {
        if (centre.size() != 0 && (centre.size() != n_genes() || !centre.allFinite()))
            throw ArgumentError("Preprocessor::set_centre", "needs " + std::to_string(n_genes()) + " finite values, got " +
                                                                std::to_string(centre.size()));
        m_centre = std::move(centre);
    }
    // Provenance, for reports only (not used by transform or align).
    double filter_threshold() const noexcept { return m_filter_threshold; }
    const std::string& gene_sets() const noexcept { return m_gene_sets; }
    void set_filter_threshold(double t) { m_filter_threshold = t; }
    void set_gene_sets(std::string label) { m_gene_sets = std::move(label); }

private:
    static constexpr const char* magic = "EXSALPRE";
    static constexpr std::uint32_t format_version = 2; // 2 added the input centre (1 is still read)

    std::vector<std::string> m_genes;                   // G model genes, upper case, in input order
    InputTransform m_transform = InputTransform::none;  // kind of input transform
    double m_cpm_scale = default_cpm_scale;             // cpm_log1p: counts per `scale`
    double m_filter_threshold = std::numeric_limits<double>::quiet_NaN(); // NaN = not recorded
    std::string m_gene_sets;                            // label of the gene-set collection, "" = none
    VectorF m_centre;                                   // G or empty: mean transformed input over training cells
    VectorF m_min;                                      // G (minmax only), min over training cells
    VectorF m_max;                                      // G (minmax only), max over training cells
};

// ---------------------------------------------------------------------------------------------
// The whole reference pipeline.

struct PreprocessOptions {
    double validation_fraction = 0.05;        // step 1, held out after one seeded shuffle
    std::uint64_t seed = 1;                   // step 1
    bool filter = true;                       // step 2 on/off
    double filter_threshold = 2.0;            // step 2, keep genes with max > threshold (as a float) over all cells
    InputTransform transform = InputTransform::none; // step 5
    double cpm_scale = Preprocessor::default_cpm_scale; // step 5, cpm_log1p only
    std::string gene_sets_label;              // stored in the Preprocessor for reports (e.g. a file name)
    // After the transform, subtract each gene's mean input over the training cells (stored with
    // the transform). With non-negative input every weight update of the first layer is nearly
    // the same for all cells, so early optimiser steps push whole units below zero for every cell
    // and they never recover (on HSMM with log1p input about 20 of 64 representation units).
    // Centred input removes that common direction: no unit died in the same runs.
    bool centre = false;
};

// What each step did, for run reports.
struct PreprocessReport {
    Index cells_input = 0, cells_train = 0, cells_validation = 0;
    Index genes_input = 0;
    Index genes_removed_by_filter = 0;    // max <= threshold in every cell
    Index genes_removed_by_gene_sets = 0; // in no set of the collection (0 without one)
    Index genes_kept = 0;
};

// What the preprocessing decides, without any values: the data's rows behind the model's genes,
// the split and the fitted transform. Training gathers its batches from the data through these
// (GatheredCells, data/cell_batches.hpp), so no genes x cells copy of the data is made.
struct PreparedCells {
    std::vector<Index> rows;        // rows of the data behind the model's genes, in model order
    std::vector<std::string> genes; // their symbols, upper case (= preprocessor.genes())
    Split split;                    // columns of the data: training and validation cells, ascending
    Preprocessor preprocessor;      // fitted on the training cells only
    PreprocessReport report;
};

struct PreparedData {
    ExpressionMatrix train;      // model genes x training cells, raw values = Poisson targets
    ExpressionMatrix validation; // model genes x validation cells, raw values
    MatrixF train_input;         // preprocessor.transform(train.values): network input
    MatrixF validation_input;    // preprocessor.transform(validation.values)
    Split split;                 // columns of the input data behind train / validation, ascending
    Preprocessor preprocessor;   // fitted on the training cells only
    PreprocessReport report;
};

namespace detail::prep {

// Rows `rows` (renamed `genes`) of the columns `columns` of m, with the columns' ids and groups:
// out(i, j) = m(rows[i], columns[j]). Indices are checked by the caller.
template <class Expression>
ExpressionMatrix select_block(const Expression& m, const std::vector<Index>& rows, const std::vector<std::string>& genes,
                              const std::vector<Index>& columns) {
    ExpressionMatrix out;
    gather_block(m, rows, columns, out.values);
    out.genes = genes;
    for (Index c : columns) {
        out.cells.push_back(m.cells[static_cast<std::size_t>(c)]);
        if (m.has_groups()) out.groups.push_back(m.groups[static_cast<std::size_t>(c)]);
    }
    return out;
}

// The data's rows behind the model's genes (steps 2-4): filtered on all cells, upper-cased,
// restricted to the sets. On row indices and names only: no value is copied.
template <class Expression>
void select_model_genes(const Expression& data, const GeneSetCollection* sets, const PreprocessOptions& opt,
                        PreparedCells& out, ProcessGroup* processes = nullptr, CellRange share = {0, -1}) {
    std::vector<Index> rows;
    if (opt.filter) {
        rows = filter_genes_by_max(data, static_cast<float>(opt.filter_threshold), processes, share);
    } else {
        rows.resize(static_cast<std::size_t>(data.n_genes()));
        std::iota(rows.begin(), rows.end(), Index(0));
    }
    out.report.genes_removed_by_filter = data.n_genes() - static_cast<Index>(rows.size());
    std::vector<std::string> names; // upper-cased symbols of `rows`
    names.reserve(rows.size());
    for (Index r : rows) names.push_back(data.genes[static_cast<std::size_t>(r)]);
    check_unique_upper(names, "upper_case_genes");
    for (auto& g : names) upper_case_ascii(g);
    if (sets) {
        const std::vector<Index> in_sets = restrict_to_gene_sets(names, *sets); // positions in `rows`
        out.report.genes_removed_by_gene_sets = static_cast<Index>(rows.size() - in_sets.size());
        std::vector<Index> kept_rows;
        std::vector<std::string> kept_names;
        kept_rows.reserve(in_sets.size());
        kept_names.reserve(in_sets.size());
        for (Index i : in_sets) {
            kept_rows.push_back(rows[static_cast<std::size_t>(i)]);
            kept_names.push_back(std::move(names[static_cast<std::size_t>(i)]));
        }
        rows = std::move(kept_rows);
        names = std::move(kept_names);
    }
    out.report.genes_kept = static_cast<Index>(rows.size());
    out.rows = std::move(rows);
    out.genes = std::move(names);
}

// log1p and cpm_log1p need finite non-negative values: throws ArgumentError naming the gene and
// the cell (cell_ids[columns[j]] for column j of `block`, raw values of the model's genes) of the
// first other value.
inline void check_block_transformable(const Eigen::Ref<const MatrixF>& block, const Index* columns,
                                      const std::vector<std::string>& cell_ids, const std::vector<std::string>& genes,
                                      InputTransform transform, const char* where = "prepare") {
    if (transform != InputTransform::log1p && transform != InputTransform::cpm_log1p) return;
    if ((block.array() >= 0.0f && block.array().isFinite()).all()) return;
    for (Index j = 0; j < block.cols(); ++j)
        for (Index g = 0; g < block.rows(); ++g)
            if (!(block(g, j) >= 0.0f && std::isfinite(block(g, j))))
                throw ArgumentError(where, std::string(input_transform_name(transform)) +
                                                   " needs finite non-negative values; gene " +
                                                   genes[static_cast<std::size_t>(g)] + " of cell " +
                                                   cell_ids[static_cast<std::size_t>(columns[j])] + " is " +
                                                   std::to_string(block(g, j)),
                                    Setting::expression_data);
}

template <class Expression>
void check_transformable(const CellGather<Expression>& cells, const std::vector<Index>& columns,
                         const std::vector<std::string>& genes, InputTransform transform) {
    if (transform != InputTransform::log1p && transform != InputTransform::cpm_log1p) return;
    Preprocessor::for_each_block(cells, columns, [&](Eigen::Ref<MatrixF> block, Index first) {
        check_block_transformable(block, columns.data() + first, cells.data().cells, genes, transform);
    });
}

// Data-parallel (`processes`): each process holds (at least) the cells `share` of the data, every
// process draws the same split and keeps the whole of it in `out.split`; the gene maxima and the
// transform's statistics are combined over the processes, so every process prepares alike.
// Collective; an error on one process throws on all (rethrow_if_any_failed).
template <class Expression>
PreparedCells prepare_cells(const Expression& data, const GeneSetCollection* sets, const PreprocessOptions& opt,
                            ProcessGroup* processes = nullptr, CellRange share = {0, -1}) {
    data.check_consistent("prepare");
    PreparedCells out;
    out.report.cells_input = data.n_cells();
    out.report.genes_input = data.n_genes();
    out.split = split_train_validation(data.n_cells(), opt.validation_fraction, opt.seed); // 1. split
    // Ascending columns: the training cells of a process that holds a range of the cells are a
    // range of the list, and the processes' ranges in rank order make up the same list as one
    // process's (the batches draw their own order every epoch).
    std::sort(out.split.train.begin(), out.split.train.end());
    std::sort(out.split.validation.begin(), out.split.validation.end());
    select_model_genes(data, sets, opt, out, processes, share); // 2.-4.
    out.report.cells_train = static_cast<Index>(out.split.train.size());
    out.report.cells_validation = static_cast<Index>(out.split.validation.size());
    const CellGather<Expression> cells(data, out.rows);
    const std::vector<Index> train = columns_in(out.split.train, share);
    on_every_process(processes, "checking the cells", [&] {
        check_transformable(cells, train, out.genes, opt.transform);
        check_transformable(cells, columns_in(out.split.validation, share), out.genes, opt.transform);
    });
    // 5. fit the transform (and the centre) on the training cells only
    out.preprocessor = Preprocessor::fit(cells, train, out.genes, opt.transform, opt.cpm_scale, opt.centre, processes);
    out.preprocessor.set_filter_threshold(opt.filter ? opt.filter_threshold : std::numeric_limits<double>::quiet_NaN());
    out.preprocessor.set_gene_sets(opt.gene_sets_label);
    return out;
}

template <class Expression>
PreparedData prepare(const Expression& data, const GeneSetCollection* sets, const PreprocessOptions& opt) {
    PreparedCells cells = prepare_cells(data, sets, opt);
    PreparedData out;
    out.train = select_block(data, cells.rows, cells.genes, cells.split.train);
    out.validation = select_block(data, cells.rows, cells.genes, cells.split.validation);
    out.train_input = cells.preprocessor.transform(out.train.values);
    out.validation_input = cells.preprocessor.transform(out.validation.values);
    out.split = std::move(cells.split);
    out.preprocessor = std::move(cells.preprocessor);
    out.report = cells.report;
    return out;
}

} // namespace detail::prep

// Runs the reference pipeline: split, filter (over all cells), upper-case, restrict to the gene
// sets, fit the transform on the training cells. Any step's error propagates with its name.
// Dense (ExpressionMatrix) or sparse (SparseExpression) data: the sparse cells are densified only
// for the model's genes, straight into the training and validation matrices.
inline PreparedData prepare(const ExpressionMatrix& data, const GeneSetCollection& gene_sets,
                            const PreprocessOptions& options = {}) {
    return detail::prep::prepare(data, &gene_sets, options);
}

inline PreparedData prepare(const SparseExpression& data, const GeneSetCollection& gene_sets,
                            const PreprocessOptions& options = {}) {
    return detail::prep::prepare(data, &gene_sets, options);
}

// The same decisions without copying any value (see PreparedCells).
inline PreparedCells prepare_cells(const ExpressionMatrix& data, const GeneSetCollection& gene_sets,
                                   const PreprocessOptions& options = {}) {
    return detail::prep::prepare_cells(data, &gene_sets, options);
}

inline PreparedCells prepare_cells(const SparseExpression& data, const GeneSetCollection& gene_sets,
                                   const PreprocessOptions& options = {}) {
    return detail::prep::prepare_cells(data, &gene_sets, options);
}

// The same without step 4 (no gene-set collection).
inline PreparedData prepare(const SparseExpression& data, const PreprocessOptions& options = {}) {
    return detail::prep::prepare(data, nullptr, options);
}

inline PreparedData prepare(const ExpressionMatrix& data, const PreprocessOptions& options = {}) {
    return detail::prep::prepare(data, nullptr, options);
}

} // namespace exsal

#endif // EXSAL_DATA_PREPROCESS_HPP
