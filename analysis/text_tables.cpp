// Markdown and CSV renderings of a ResultsTable.
#include <sstream>

#include "table_writers.h"

namespace sparser::analysis {
namespace {

const char* unicode_marker(NoteKind kind) {
  switch (kind) {
    case NoteKind::kMissingSeeds: return "†";
    case NoteKind::kExcludedRuns: return "‡";
    case NoteKind::kSingleSeed: return "§";
    case NoteKind::kOtherBatch: return "¶";
  }
  return "";
}

std::string markers(const Cell& cell) {
  std::string text;
  for (NoteKind kind : cell.markers) text += unicode_marker(kind);
  return text;
}

std::string escape_markdown(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|' || c == '*' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string markdown_cell(const Cell& cell, PlusMinusStyle style) {
  if (!cell.has_value) return "–" + markers(cell);
  const std::string mean = format_fixed(cell.mean, cell.decimals);
  const std::string std = format_fixed(cell.std, cell.decimals);
  std::string text;
  if (style == PlusMinusStyle::kLatex) {
    const std::string math = cell.best ? "\\mathbf{" + mean + "}" : mean;
    text = "$" + math + (shows_std(cell) ? "_{\\pm" + std + "}" : "") + "$";
  } else {
    text = shows_std(cell) ? mean + " ± " + std : mean;
    if (cell.best) text = "**" + text + "**";
  }
  text += markers(cell);
  if (cell.has_delta) text += " (" + format_delta(cell.delta, cell.decimals) + ")";
  return text;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string cell_notes(const ResultsTable& table, size_t row, size_t group) {
  std::string text;
  for (const auto& note : table.notes)
    if (note.row == row && note.column_group == group) text += (text.empty() ? "" : "; ") + note.text;
  return text;
}

}  // namespace

std::string render_markdown(const ResultsTable& table, PlusMinusStyle plus_minus) {
  const TableLayout& layout = table.layout;
  std::ostringstream out;
  if (!layout.caption.empty()) out << "**Table:** " << layout.caption << "\n\n";
  out << "| " << escape_markdown(layout.row_header);
  std::string alignment = "|:--";
  for (const auto& group : layout.columns)
    for (const auto& metric : group.metrics) {
      out << " | " << escape_markdown(group.name + " " + metric.name);
      alignment += "|--:";
    }
  out << " |\n" << alignment << "|\n";
  for (const auto& row : table.rows) {
    out << "| " << escape_markdown(row.name);
    for (const auto& cell : row.cells) out << " | " << markdown_cell(cell, plus_minus);
    out << " |\n";
  }
  if (!table.notes.empty()) out << "\n";
  for (const auto& note : table.notes)
    out << "- " << unicode_marker(note.kind) << " " << escape_markdown(table.rows[note.row].name) << ", "
        << escape_markdown(layout.columns[note.column_group].name) << ": " << escape_markdown(note.text) << "\n";
  return out.str();
}

std::string render_csv(const ResultsTable& table) {
  const TableLayout& layout = table.layout;
  std::ostringstream out;
  out << "row,dataset,metric,mean,std,seeds,best,delta,notes\n";
  for (size_t r = 0; r < table.rows.size(); ++r) {
    size_t column = 0;
    for (size_t g = 0; g < layout.columns.size(); ++g) {
      const std::string notes = cell_notes(table, r, g);
      for (const auto& metric : layout.columns[g].metrics) {
        const Cell& cell = table.rows[r].cells[column++];
        out << csv_field(table.rows[r].name) << ',' << csv_field(layout.columns[g].name) << ','
            << csv_field(metric.name) << ',' << (cell.has_value ? format_fixed(cell.mean, cell.decimals) : "") << ','
            << (shows_std(cell) ? format_fixed(cell.std, cell.decimals) : "") << ',' << cell.seeds << ','
            << (cell.best ? "1" : "0") << ',' << (cell.has_delta ? format_delta(cell.delta, cell.decimals) : "")
            << ',' << csv_field(notes) << '\n';
      }
    }
  }
  return out.str();
}

}  // namespace sparser::analysis
