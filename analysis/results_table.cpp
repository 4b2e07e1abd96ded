#include "results_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

namespace sparser::analysis {
namespace {

double round_to(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  const double rounded = std::round(value * scale) / scale;
  return rounded == 0.0 ? 0.0 : rounded;  // drop the sign of -0.0
}

std::string seed_list(const std::set<int>& seeds) {
  std::string text;
  for (int seed : seeds) text += (text.empty() ? "" : ", ") + std::to_string(seed);
  return text;
}

Cell summarize(const CellRuns& cell_runs, const MetricSpec& metric, int table_decimals,
               std::vector<std::string>& exclusions) {
  std::vector<double> values;
  for (const auto& [seed, run] : cell_runs.completed_by_seed) {
    if (auto value = metric_value(*run, metric)) values.push_back(*value);
    else exclusions.push_back("excluded " + run->run_id + " (no " + (metric.source == MetricSource::kFinal ? "final " : "") +
                              metric.key + ")");
  }
  Cell cell;
  cell.decimals = metric.decimals >= 0 ? metric.decimals : table_decimals;
  cell.show_std = metric.show_std;
  if (values.empty()) return cell;
  cell.has_value = true;
  cell.seeds = static_cast<int>(values.size());
  double sum = 0.0;
  for (double v : values) sum += v;
  const double mean = sum / values.size();
  double squares = 0.0;
  for (double v : values) squares += (v - mean) * (v - mean);
  // Sample (n-1) standard deviation: the seeds are a sample of possible runs.
  const double std = values.size() > 1 ? std::sqrt(squares / (values.size() - 1)) : 0.0;
  cell.mean = round_to(mean, cell.decimals);
  cell.std = round_to(std, cell.decimals);
  return cell;
}

void mark_best(ResultsTable& table, size_t column, BestRule rule) {
  if (rule == BestRule::kNone) return;
  size_t with_value = 0;
  double best = rule == BestRule::kHighest ? -INFINITY : INFINITY;
  for (const auto& row : table.rows)
    if (row.cells[column].has_value) {
      ++with_value;
      const double mean = row.cells[column].mean;
      best = rule == BestRule::kHighest ? std::max(best, mean) : std::min(best, mean);
    }
  if (with_value < 2) return;  // bold means "best of several"
  for (auto& row : table.rows)
    if (row.cells[column].has_value && row.cells[column].mean == best) row.cells[column].best = true;
}

void add_deltas(ResultsTable& table, size_t baseline, size_t column) {
  const Cell& reference = table.rows[baseline].cells[column];
  if (!reference.has_value) return;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    Cell& cell = table.rows[r].cells[column];
    if (r == baseline || !cell.has_value) continue;
    cell.has_delta = true;
    // From the displayed values, so a reader can check the subtraction.
    cell.delta = round_to(cell.mean - reference.mean, cell.decimals);
  }
}

}  // namespace

std::string format_fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, round_to(value, decimals));
  return buffer;
}

std::string format_delta(double delta, int decimals) {
  const double rounded = round_to(delta, decimals);  // -0.04 prints as +0.0, not 0.0
  return (rounded >= 0 ? "+" : "") + format_fixed(rounded, decimals);
}

ResultsTable build_results_table(const std::vector<RunRecord>& runs, const TableLayout& layout) {
  ResultsTable table;
  table.layout = layout;
  const size_t groups = layout.columns.size();

  std::vector<std::vector<CellRuns>> selected(layout.rows.size());
  std::map<std::string, std::set<int>> seeds_of_experiment;
  for (size_t r = 0; r < layout.rows.size(); ++r)
    for (size_t g = 0; g < groups; ++g) {
      selected[r].push_back(select_cell_runs(runs, layout.rows[r], layout.columns[g]));
      for (const auto& [seed, run] : selected[r][g].completed_by_seed)
        seeds_of_experiment[run->experiment].insert(seed);
    }

  for (size_t r = 0; r < layout.rows.size(); ++r) {
    ResultsRow row{layout.rows[r].name, layout.rows[r].rule_above, layout.rows[r].name == layout.baseline, {}};
    for (size_t g = 0; g < groups; ++g) {
      const CellRuns& cell_runs = selected[r][g];
      std::vector<std::string> exclusions = cell_runs.exclusions;
      std::vector<Cell> cells;
      for (const auto& metric : layout.columns[g].metrics)
        cells.push_back(summarize(cell_runs, metric, layout.decimals, exclusions));

      // A cell should have every seed the layout asks for, its runs' configs name or its
      // runs had, or another cell of its experiment has: a seed that failed, never ran, or
      // ran for other rows only, is missing. Another experiment's config may run other seeds.
      std::set<int> expected(layout.seeds.begin(), layout.seeds.end());
      expected.insert(cell_runs.expected_seeds.begin(), cell_runs.expected_seeds.end());
      const auto& seeds_of_its_experiment = seeds_of_experiment[cell_runs.experiment];
      expected.insert(seeds_of_its_experiment.begin(), seeds_of_its_experiment.end());
      std::vector<Note> notes;
      std::set<int> missing;
      for (int seed : expected)
        if (!cell_runs.completed_by_seed.count(seed)) missing.insert(seed);
      if (cell_runs.completed_by_seed.empty() && cell_runs.exclusions.empty())
        notes.push_back({NoteKind::kMissingSeeds, r, g, "no runs"});
      else if (!missing.empty())
        notes.push_back({NoteKind::kMissingSeeds, r, g,
                         std::string(missing.size() == 1 ? "missing seed " : "missing seeds ") + seed_list(missing) +
                             " (" + std::to_string(cell_runs.completed_by_seed.size()) + " of " +
                             std::to_string(expected.size()) + " seeds)"});
      std::sort(exclusions.begin(), exclusions.end());
      exclusions.erase(std::unique(exclusions.begin(), exclusions.end()), exclusions.end());
      for (const auto& exclusion : exclusions) notes.push_back({NoteKind::kExcludedRuns, r, g, exclusion});
      // An experiment of one seed (efficiency) is no anomaly worth a footnote in every cell.
      if (cell_runs.completed_by_seed.size() == 1 && expected.size() > 1)
        notes.push_back({NoteKind::kSingleSeed, r, g, "single seed, no standard deviation"});
      // The cell's runs share one batch (select_cell_runs); summaries before global_batch lack it.
      if (layout.global_batch > 0 && !cell_runs.completed_by_seed.empty()) {
        const auto batch = batch_of(*cell_runs.completed_by_seed.begin()->second);
        if (batch.global_batch && *batch.global_batch != layout.global_batch)
          notes.push_back({NoteKind::kOtherBatch, r, g,
                           "trained with " + describe(batch) + ", not the layout's " +
                               std::to_string(layout.global_batch) + " image(s) per step"});
      }

      std::set<NoteKind> kinds;
      for (const auto& note : notes) kinds.insert(note.kind);
      for (auto& cell : cells) cell.markers.assign(kinds.begin(), kinds.end());
      row.cells.insert(row.cells.end(), cells.begin(), cells.end());
      table.notes.insert(table.notes.end(), notes.begin(), notes.end());
    }
    table.rows.push_back(std::move(row));
  }

  std::vector<BestRule> rules;
  for (const auto& group : layout.columns)
    for (const auto& metric : group.metrics) rules.push_back(metric.best);
  const size_t columns = table.rows.empty() ? 0 : table.rows.front().cells.size();
  for (size_t c = 0; c < columns; ++c) mark_best(table, c, rules[c]);
  if (!layout.baseline.empty()) {
    auto baseline = std::find_if(table.rows.begin(), table.rows.end(), [](const ResultsRow& row) { return row.baseline; });
    if (baseline == table.rows.end()) {
      std::string names;
      for (const auto& row : table.rows) names += "\n  " + row.name;
      throw std::runtime_error("baseline '" + layout.baseline + "' is not a row; rows are:" + names);
    }
    for (size_t c = 0; c < columns; ++c) add_deltas(table, baseline - table.rows.begin(), c);
  }
  std::stable_sort(table.notes.begin(), table.notes.end(),
                   [](const Note& a, const Note& b) { return a.kind < b.kind; });
  return table;
}

}  // namespace sparser::analysis
