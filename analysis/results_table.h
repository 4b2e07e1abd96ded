// The numbers of a table, independent of its output format: per row and column
// the mean and sample standard deviation over seeds (in percent, or in the unit of
// a summary.json column, rounded to the metric's decimals), the best value per
// column, the delta to the baseline row, and notes on everything that was not
// averaged as expected.
#pragma once

#include <string>
#include <vector>

#include "run_record.h"
#include "table_layout.h"

namespace sparser::analysis {

// Each kind gets its own footnote marker (dagger, double dagger, section sign, pilcrow).
enum class NoteKind {
  kMissingSeeds,  // lacks a seed that the layout, the runs' configs or another cell of their experiment has
  kExcludedRuns,  // failed, running, interrupted, duplicate-seed or metric-less runs left out
  kSingleSeed,    // one seed where more were expected: mean only, no standard deviation
  kOtherBatch,    // trained with another global batch than the layout's global_batch
};

struct Note {
  NoteKind kind;
  size_t row;           // index into ResultsTable::rows
  size_t column_group;  // index into layout.columns
  std::string text;     // "missing seed 3", "excluded lora-seed=2 (failed: out of memory)"
};

struct Cell {
  bool has_value = false;  // false: no completed run had this metric
  int seeds = 0;           // number of values averaged
  int decimals = 1;        // of the metric (or the table), for mean, std and delta
  bool show_std = true;    // the metric's choice; a std needs seeds > 1 as well
  double mean = 0.0;       // in the metric's unit (percent for final metrics), rounded
  double std = 0.0;        // same unit, rounded; meaningful when seeds > 1
  bool best = false;
  bool has_delta = false;
  double delta = 0.0;               // mean - baseline mean, both as displayed
  std::vector<NoteKind> markers;    // distinct kinds, in NoteKind order
};

struct ResultsRow {
  std::string name;
  bool rule_above = false;
  bool baseline = false;
  std::vector<Cell> cells;  // column groups' metrics, flattened in layout order
};

struct ResultsTable {
  TableLayout layout;
  std::vector<ResultsRow> rows;
  std::vector<Note> notes;  // ordered by kind, then row, then column group
};

// Throws std::runtime_error when a row matches runs of more than one group on
// the same dataset (averaging those would mix configurations as if they were
// seeds) or when the baseline names no row.
ResultsTable build_results_table(const std::vector<RunRecord>& runs, const TableLayout& layout);

// Fixed-point text of a rounded value ("84.2"); never "-0.0".
std::string format_fixed(double value, int decimals);
// Signed delta as papers print it: "+1.3", "-0.2", "+0.0".
std::string format_delta(double delta, int decimals);

}  // namespace sparser::analysis
