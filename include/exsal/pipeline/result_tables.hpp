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
// Cells without group labels leave the group column of representation.csv empty, and the two
// group tables hold only their header.

#include "exsal/core/error.hpp"
#include "exsal/core/types.hpp"
#include "exsal/interpret/groups.hpp"
#include "exsal/interpret/interpretation.hpp"
#include "exsal/report/csv_table.hpp"

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

// representation.csv from the units x cells representation, cell ids and labels (or none).
inline CsvTable representation_table(const std::vector<std::string>& cells, const std::vector<std::string>& groups,
                                     const MatrixF& representation) {
    const char* where = "exsal::representation_table";
    if (static_cast<Index>(cells.size()) != representation.cols())
        throw ArgumentError(where, std::to_string(cells.size()) + " cell ids for " +
                                       std::to_string(representation.cols()) + " representation columns");
    if (!groups.empty() && groups.size() != cells.size())
        throw ArgumentError(where, std::to_string(groups.size()) + " group labels for " + std::to_string(cells.size()) + " cells");
    std::vector<std::string> columns{"cell", "group"};
    for (const auto& u : unit_labels(representation.rows())) columns.push_back(u);
    CsvTable table("representation", columns);
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

} // namespace exsal

#endif // EXSAL_PIPELINE_RESULT_TABLES_HPP
