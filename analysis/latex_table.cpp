#include "table_writers.h"

#include <map>
#include <sstream>
#include <utility>

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

// The UTF-8 sequence at text[at]: its code point and length, or length 0 when invalid.
std::pair<char32_t, size_t> decode_utf8(const std::string& text, size_t at) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(at);
  const size_t length = lead >= 0xF0 && lead < 0xF5 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 0;
  if (length == 0 || at + length > text.size()) return {0, 0};
  char32_t code = lead & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    if ((byte(at + k) & 0xC0) != 0x80) return {0, 0};
    code = (code << 6) | (byte(at + k) & 0x3F);
  }
  const char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return {0, 0};
  return {code, length};
}

// The commands pdflatex (default encodings, no packages) prints these characters with.
const char* latex_for(char32_t code) {
  static const std::map<char32_t, const char*> known = {
      {U'≥', "$\\geq$"}, {U'≤', "$\\leq$"}, {U'±', "$\\pm$"}, {U'×', "$\\times$"}, {U'÷', "$\\div$"},
      {U'·', "$\\cdot$"}, {U'→', "$\\rightarrow$"}, {U'←', "$\\leftarrow$"}, {U'−', "$-$"}, {U'–', "--"},
      {U'—', "---"}, {U'…', "\\ldots{}"}, {U'¹', "$^1$"}, {U'²', "$^2$"}, {U'³', "$^3$"}, {U'°', "$^\\circ$"},
      {U'µ', "$\\mu$"}, {U'μ', "$\\mu$"}, {U'σ', "$\\sigma$"}, {U'α', "$\\alpha$"}, {U'β', "$\\beta$"},
      {U'γ', "$\\gamma$"}, {U'λ', "$\\lambda$"}, {U'†', "\\dag{}"}, {U'‡', "\\ddag{}"}, {U'¶', "\\P{}"},
      {U'§', "\\S{}"}, {U'‘', "`"}, {U'’', "'"}, {U'“', "``"}, {U'”', "''"}, {0xA0, "~"}};
  const auto found = known.find(code);
  return found == known.end() ? nullptr : found->second;
}

}  // namespace

std::string escape_latex(const std::string& text) {
  std::string out;
  for (size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const auto [code, length] = decode_utf8(text, at);
      if (length == 0) {  // not UTF-8 (a file name in another encoding)
        out += '?';
        continue;
      }
      // The accented letters of Latin-1 print as they are, but for four that need T1 encoding.
      const bool latin_letter = code >= 0xC0 && code <= 0xFF && code != U'Ð' && code != U'Þ' && code != U'ð' &&
                                code != U'þ';
      if (const char* command = latex_for(code)) out += command;
      else out += latin_letter ? text.substr(at, length) : "?";
      at += length - 1;
      continue;
    }
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
    // After \\ or \midrule a leading '[' would open their optional argument, a '*' make \\*.
    const bool shield = !row.name.empty() && (row.name.front() == '[' || row.name.front() == '*');
    out << "    " << (shield ? "{}" : "") << escape_latex(row.name);
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
