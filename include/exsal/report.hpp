#ifndef EXSAL_REPORT_HPP
#define EXSAL_REPORT_HPP

// exsal's reports: CSV tables, JSON, SVG heatmaps, scatter maps and the clustering that orders
// heatmaps. Apart from exsal/exsal.hpp so that library users who write their own outputs do not
// compile them.

#include "exsal/exsal.hpp"

#include "exsal/report/cluster.hpp"
#include "exsal/report/csv_table.hpp"
#include "exsal/report/heatmap.hpp"
#include "exsal/report/json.hpp"
#include "exsal/report/scatter.hpp"
#include "exsal/report/svg.hpp"

#endif // EXSAL_REPORT_HPP
