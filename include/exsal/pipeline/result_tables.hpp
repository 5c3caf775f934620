#ifndef EXSAL_PIPELINE_RESULT_TABLES_HPP
#define EXSAL_PIPELINE_RESULT_TABLES_HPP

// The pipeline's result tables (CSV with a header row; names and columns are a contract).
// Units are labelled unit_0 ... unit_{U-1} everywhere.
//   representation.csv   cell,group,unit_0,...,unit_{U-1}             one row per cell, input order
//   unit_gene_sets.csv   unit,gene_set,genes_in_set,genes_found,impact,z_score,p_value,q_value
//                        over all cells, one row per unit and usable set (unit-major, sets in
//                        collection order)
//   group_units.csv      group,unit,mean_in_group,mean_in_rest,effect_size
//                        each group against all other cells (effect size = group minus rest over
//                        the pooled SD); then each --compare pair A:B as group "A_vs_B" with A in
//                        the *_in_group and B in the *_in_rest columns
//   group_gene_sets.csv  group,unit,gene_set,impact_in_group,impact_in_rest,difference
//                        difference = impact_in_group - impact_in_rest; pairs as above
//   gene_saliency.csv    unit,gene,mean_abs_saliency                    genes in model order
//   units.csv            unit,active,activation_mean,activation_sd,activation_min,activation_max,
//                        fraction_on,best_gene_set,best_q_value          one row per unit
//   group_programmes.csv group,gene_set,direction,score,p_value,q_value,rank,units,z_score,
//                        input_difference,competitive_z,competitive_p (score T(S), its z against
//                        the label permutations, the in - out mean input over S, and T against
//                        random sets of the same size: programmes.hpp)
//                        per comparison (groups, then pairs A_vs_B): the ranked sets higher in
//                        the group, then the ranked lower ones, then the sets without a rank (NA:
//                        they do not stand out from random sets); units = the units carrying the
//                        set ("unit_3;unit_7")
//   group_programmes_consensus.csv  group,gene_set,direction,mean_rank,top5_fraction,p_value,
//                        q_value,rank                                    with --ensemble K > 1
// Cells without group labels leave the group column of representation.csv empty, and the two
// group tables hold only their header.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/groups.hpp"
#include "exsal/interpret/interpretation.hpp"
#include "exsal/interpret/programmes.hpp"
#include "exsal/report/csv_table.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace exsal {

// "unit_<u>", the label of representation unit u in every output.
inline std::string unit_label(Index u) { return "unit_" + std::to_string(u); }

inline std::vector<std::string> unit_labels(Index units) {
    std::vector<std::string> labels;
    labels.reserve(static_cast<std::size_t>(units));
    for (Index u = 0; u < units; ++u) labels.push_back(unit_label(u));
    return labels;
}

namespace detail {
inline void check_representation_cells(const char* where, const std::vector<std::string>& cells,
                                       const std::vector<std::string>& groups, const MatrixF& representation) {
    if (static_cast<Index>(cells.size()) != representation.cols())
        throw ArgumentError(where, std::to_string(cells.size()) + " cell ids for " +
                                       std::to_string(representation.cols()) + " representation columns");
    if (!groups.empty() && groups.size() != cells.size())
        throw ArgumentError(where, std::to_string(groups.size()) + " group labels for " + std::to_string(cells.size()) + " cells");
}
inline std::vector<std::string> representation_columns(Index units) {
    std::vector<std::string> columns{"cell", "group"};
    for (const auto& u : unit_labels(units)) columns.push_back(u);
    return columns;
}
} // namespace detail

// representation.csv from the units x cells representation, cell ids and labels (or none).
inline CsvTable representation_table(const std::vector<std::string>& cells, const std::vector<std::string>& groups,
                                     const MatrixF& representation) {
    detail::check_representation_cells("exsal::representation_table", cells, groups, representation);
    CsvTable table("representation", detail::representation_columns(representation.rows()));
    std::vector<CsvField> row;
    for (Index c = 0; c < representation.cols(); ++c) {
        row.clear();
        row.emplace_back(cells[static_cast<std::size_t>(c)]);
        row.emplace_back(groups.empty() ? std::string() : groups[static_cast<std::size_t>(c)]);
        for (Index u = 0; u < representation.rows(); ++u) row.emplace_back(representation(u, c)); // r_u(cell c)
        table.add_row(row);
    }
    return table;
}

// The same file written row by row: the table of a million cells as strings would take gigabytes
// (64 fields of ~40 bytes each per cell), the file itself a few hundred megabytes. Byte for byte
// what representation_table(...).write(path) writes.
inline void write_representation(const std::string& path, const std::vector<std::string>& cells,
                                 const std::vector<std::string>& groups, const MatrixF& representation) {
    detail::check_representation_cells("exsal::write_representation", cells, groups, representation);
    const std::vector<std::string> columns = detail::representation_columns(representation.rows());
    write_file_atomically(path, [&](std::ostream& out) {
        for (std::size_t c = 0; c < columns.size(); ++c) out << (c > 0 ? "," : "") << CsvTable::quote(columns[c]);
        out << '\n';
        for (Index c = 0; c < representation.cols(); ++c) {
            out << CsvTable::quote(CsvField(cells[static_cast<std::size_t>(c)]).text()) << ','
                << CsvTable::quote(groups.empty() ? std::string() : CsvField(groups[static_cast<std::size_t>(c)]).text());
            for (Index u = 0; u < representation.rows(); ++u) out << ',' << CsvField(representation(u, c)).text();
            out << '\n';
        }
    });
}

// unit_gene_sets.csv.
inline CsvTable unit_gene_sets_table(const Interpretation& in) {
    CsvTable table("unit_gene_sets",
                   {"unit", "gene_set", "genes_in_set", "genes_found", "impact", "z_score", "p_value", "q_value"});
    for (Index u = 0; u < in.impact.cols(); ++u)
        for (Index s = 0; s < in.impact.rows(); ++s) {
            const auto i = static_cast<std::size_t>(s);
            table.add_row({unit_label(u), in.set_names[i], in.genes_in_set[i], in.genes_found[i], in.impact(s, u),
                           in.z_score(s, u), in.p_value(s, u), in.q_value(s, u)});
        }
    return table;
}

// group_units.csv from compare_unit_activity's rows (each group, then the pairs).
inline CsvTable group_units_table(const std::vector<UnitGroupStats>& stats) {
    CsvTable table("group_units", {"group", "unit", "mean_in_group", "mean_in_rest", "effect_size"});
    for (const auto& s : stats)
        table.add_row({s.group, unit_label(s.unit), s.mean_in_group, s.mean_in_rest, s.effect_size});
    return table;
}

// The label of a --compare pair in the group tables and figure names.
inline std::string pair_label(const std::string& a, const std::string& b) { return a + "_vs_" + b; }

// group_gene_sets.csv: each group against the rest, then each pair.
inline CsvTable group_gene_sets_table(const Interpretation& in) {
    CsvTable table("group_gene_sets",
                   {"group", "unit", "gene_set", "impact_in_group", "impact_in_rest", "difference"});
    const auto add = [&](const std::string& label, const MatrixD& a, const MatrixD& b) {
        for (Index u = 0; u < a.cols(); ++u)
            for (Index s = 0; s < a.rows(); ++s)
                table.add_row({label, unit_label(u), in.set_names[static_cast<std::size_t>(s)], a(s, u), b(s, u),
                               a(s, u) - b(s, u)}); // group minus rest (pair: A minus B)
    };
    for (std::size_t g = 0; g < in.groups.size(); ++g) add(in.groups[g], in.impact_in_group[g], in.impact_in_rest[g]);
    for (const auto& p : in.pairs) add(pair_label(p.group_a, p.group_b), p.impact_a, p.impact_b);
    return table;
}

// gene_saliency.csv; `genes` names the rows of in.gene_saliency (model order).
inline CsvTable gene_saliency_table(const Interpretation& in, const std::vector<std::string>& genes) {
    if (static_cast<Index>(genes.size()) != in.gene_saliency.rows())
        throw ArgumentError("exsal::gene_saliency_table", std::to_string(genes.size()) + " gene names for " +
                                                              std::to_string(in.gene_saliency.rows()) + " saliency rows");
    CsvTable table("gene_saliency", {"unit", "gene", "mean_abs_saliency"});
    for (Index u = 0; u < in.gene_saliency.cols(); ++u)
        for (Index g = 0; g < in.gene_saliency.rows(); ++g)
            table.add_row({unit_label(u), genes[static_cast<std::size_t>(g)], in.gene_saliency(g, u)});
    return table;
}

// units.csv: activation statistics, the active call and, for active units, the set with the
// smallest q-value (ties: larger z) and that q-value.
inline CsvTable units_table(const UnitActivity& a, const Interpretation& in) {
    CsvTable table("units", {"unit", "active", "activation_mean", "activation_sd", "activation_min", "activation_max",
                             "fraction_on", "best_gene_set", "best_q_value"});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (Index u = 0; u < a.mean.size(); ++u) {
        Index best = -1;
        for (Index s = 0; s < in.q_value.rows(); ++s) {
            if (std::isnan(in.q_value(s, u))) continue;
            if (best < 0 || in.q_value(s, u) < in.q_value(best, u) ||
                (in.q_value(s, u) == in.q_value(best, u) && in.z_score(s, u) > in.z_score(best, u)))
                best = s;
        }
        const bool active = a.active[static_cast<std::size_t>(u)];
        table.add_row({unit_label(u), active, a.mean(u), a.sd(u), a.min(u), a.max(u),
                       a.fraction_on(u), best >= 0 ? in.set_names[static_cast<std::size_t>(best)] : std::string(),
                       best >= 0 ? in.q_value(best, u) : nan});
    }
    return table;
}

namespace detail {
// A rank, or NA for 0 (not ranked).
inline CsvField rank_field(Index rank) { return rank > 0 ? CsvField(rank) : CsvField(std::numeric_limits<double>::quiet_NaN()); }

// Sets of one comparison in output order: higher by rank, then lower by rank, unranked sets last
// (collection order).
template <typename Direction, typename Rank>
std::vector<Index> programme_row_order(const Direction& direction, const Rank& rank) {
    std::vector<Index> order(direction.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<Index>(i);
    std::stable_sort(order.begin(), order.end(), [&](Index x, Index y) {
        const auto dx = direction[static_cast<std::size_t>(x)], dy = direction[static_cast<std::size_t>(y)];
        const auto rx = rank[static_cast<std::size_t>(x)], ry = rank[static_cast<std::size_t>(y)];
        if ((rx > 0) != (ry > 0)) return rx > 0;
        if (dx != dy) return dx == ProgrammeDirection::higher;
        return rx < ry;
    });
    return order;
}
} // namespace detail

// group_programmes.csv; `set_names` names the sets of the analysis (the usable sets).
inline CsvTable group_programmes_table(const ProgrammeAnalysis& a, const std::vector<std::string>& set_names) {
    CsvTable table("group_programmes", {"group", "gene_set", "direction", "score", "p_value", "q_value", "rank", "units",
                                        "z_score", "input_difference", "competitive_z", "competitive_p"});
    for (const auto& g : a.comparisons) {
        if (static_cast<std::size_t>(g.score.size()) != set_names.size())
            throw ArgumentError("exsal::group_programmes_table", std::to_string(set_names.size()) + " set names for " +
                                                                     std::to_string(g.score.size()) + " sets");
        for (Index s : detail::programme_row_order(g.direction, g.rank)) {
            const auto i = static_cast<std::size_t>(s);
            std::string units;
            for (Index u : g.units[i]) units += (units.empty() ? "" : ";") + unit_label(u);
            table.add_row({g.group, set_names[i], std::string(to_string(g.direction[i])), g.score(s), g.p_value(s),
                           g.q_value(s), detail::rank_field(g.rank[i]), units, g.z_score(s), g.input_difference(s),
                           g.competitive_z(s), g.competitive_p(s)});
        }
    }
    return table;
}

// group_programmes_consensus.csv (see consensus_programmes).
inline CsvTable consensus_programmes_table(const std::vector<ConsensusProgrammes>& c, const std::vector<std::string>& set_names) {
    CsvTable table("group_programmes_consensus",
                   {"group", "gene_set", "direction", "mean_rank", "top5_fraction", "p_value", "q_value", "rank"});
    for (const auto& g : c)
        for (Index s : detail::programme_row_order(g.direction, g.rank)) {
            const auto i = static_cast<std::size_t>(s);
            table.add_row({g.group, set_names.at(i), std::string(to_string(g.direction[i])), g.mean_rank(s),
                           g.top5_fraction(s), g.p_value(s), g.q_value(s), detail::rank_field(g.rank[i])});
        }
    return table;
}

} // namespace exsal

#endif // EXSAL_PIPELINE_RESULT_TABLES_HPP
