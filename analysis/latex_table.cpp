#include "table_writers.h"

#include <sstream>

namespace sparser::analysis {
namespace {

const char* latex_marker(NoteKind kind) {
  switch (kind) {
    case NoteKind::kMissingSeeds: return "\\dagger";
    case NoteKind::kExcludedRuns: return "\\ddagger";
    case NoteKind::kSingleSeed: return "\\S";
    case NoteKind::kOtherBatch: return "\\P";
  }
  return "";
}

std::string superscript_markers(const std::vector<NoteKind>& kinds) {
  if (kinds.empty()) return "";
  std::string marks;
  for (NoteKind kind : kinds) marks += latex_marker(kind);
  return "^{" + marks + "}";
}

std::string bold_if(bool bold, const std::string& math) { return bold ? "\\mathbf{" + math + "}" : math; }

std::string latex_cell(const Cell& cell, PlusMinusStyle style) {
  if (!cell.has_value) return cell.markers.empty() ? "--" : "--$" + superscript_markers(cell.markers) + "$";
  const std::string mean = format_fixed(cell.mean, cell.decimals);
  std::string math;
  if (!shows_std(cell)) math = bold_if(cell.best, mean);
  else if (style == PlusMinusStyle::kLatex)
    math = bold_if(cell.best, mean) + "_{\\pm" + format_fixed(cell.std, cell.decimals) + "}";
  else
    math = bold_if(cell.best, mean + " \\pm " + format_fixed(cell.std, cell.decimals));
  std::string text = "$" + math + superscript_markers(cell.markers) + "$";
  if (cell.has_delta) text += " (" + format_delta(cell.delta, cell.decimals) + ")";
  return text;
}

void write_header(std::ostringstream& out, const TableLayout& layout) {
  out << "    \\toprule\n   ";
  size_t first_column = 2;
  std::string rules;
  for (const auto& group : layout.columns) {
    const size_t width = group.metrics.size();
    out << " & \\multicolumn{" << width << "}{c}{" << escape_latex(group.name) << "}";
    rules += " \\cmidrule(lr){" + std::to_string(first_column) + "-" + std::to_string(first_column + width - 1) + "}";
    first_column += width;
  }
  out << " \\\\\n   " << rules << "\n    " << escape_latex(layout.row_header);
  for (const auto& group : layout.columns)
    for (const auto& metric : group.metrics) out << " & " << escape_latex(metric.name);
  out << " \\\\\n    \\midrule\n";
}

void write_footnotes(std::ostringstream& out, const ResultsTable& table) {
  if (table.notes.empty()) return;
  out << "  \\par\\smallskip\n  {\\footnotesize\\raggedright\n";
  for (const auto& note : table.notes)
    out << "  $^{" << latex_marker(note.kind) << "}$ " << escape_latex(table.rows[note.row].name) << ", "
        << escape_latex(table.layout.columns[note.column_group].name) << ": " << escape_latex(note.text) << ".\\par\n";
  out << "  }\n";
}

}  // namespace

std::string escape_latex(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': case '%': case '$': case '#': case '_': case '{': case '}':
        out += '\\';
        out += c;
        break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      case '\\': out += "\\textbackslash{}"; break;
      // pdflatex's default OT1 encoding prints these three as ¡, ¿ and an em dash.
      case '<': out += "\\textless{}"; break;
      case '>': out += "\\textgreater{}"; break;
      case '|': out += "\\textbar{}"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_latex(const ResultsTable& table, const LatexOptions& options) {
  const TableLayout& layout = table.layout;
  std::ostringstream out;
  if (options.standalone) out << "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n";
  out << "\\begin{table}[t]\n  \\centering\n";
  if (!layout.caption.empty()) out << "  \\caption{" << layout.caption << "}\n";
  if (!layout.label.empty()) out << "  \\label{" << layout.label << "}\n";
  out << "  \\begin{tabular}{l";
  for (const auto& group : layout.columns) out << std::string(group.metrics.size(), 'c');
  out << "}\n";
  write_header(out, layout);
  for (const auto& row : table.rows) {
    if (row.rule_above) out << "    \\midrule\n";
    out << "    " << escape_latex(row.name);
    for (const auto& cell : row.cells) out << " & " << latex_cell(cell, options.plus_minus);
    out << " \\\\\n";
  }
  out << "    \\bottomrule\n  \\end{tabular}\n";
  write_footnotes(out, table);
  out << "\\end{table}\n";
  if (options.standalone) out << "\\end{document}\n";
  return out.str();
}

}  // namespace sparser::analysis
