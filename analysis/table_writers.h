// Renders a ResultsTable as LaTeX (booktabs), Markdown or CSV. All three show
// the same rounded numbers, bold/best flags, deltas and notes.
#pragma once

#include <string>

#include "results_table.h"

namespace sparser::analysis {

enum class PlusMinusStyle {
  kLatex,    // $84.2_{\pm0.2}$, as in the paper
  kUnicode,  // 84.2 ± 0.2
};

struct LatexOptions {
  PlusMinusStyle plus_minus = PlusMinusStyle::kLatex;
  bool standalone = false;  // wrap in a compilable \documentclass{article}
};

// A table environment: caption (taken as LaTeX), label, \toprule/\midrule/
// \bottomrule, a \multicolumn header per dataset with \cmidrule under it, and
// the footnotes below the tabular. Names, headers and notes are escaped.
std::string render_latex(const ResultsTable& table, const LatexOptions& options);

// A pipe table whose headers read "COCO mIoU"; markers are † ‡ § and the
// footnotes follow as a list.
std::string render_markdown(const ResultsTable& table, PlusMinusStyle plus_minus);

// One line per cell (long format): row,dataset,metric,mean,std,seeds,best,delta,notes;
// values as displayed (percent, or the unit of a summary column), notes spelled out.
std::string render_csv(const ResultsTable& table);

// Whether the cell shows a standard deviation: its metric wants one and it has seeds > 1.
inline bool shows_std(const Cell& cell) { return cell.show_std && cell.seeds > 1; }

// Escapes the characters LaTeX treats specially (& % $ # _ { } ~ ^ \).
std::string escape_latex(const std::string& text);

}  // namespace sparser::analysis
