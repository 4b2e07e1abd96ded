// What a table shows: which groups of runs become rows (and under which
// names), which datasets and metrics become columns. Read from a small TOML
// file (docs/analysis.md) or derived from the runs themselves.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "run_record.h"

namespace sparser::analysis {

struct RowSpec {
  std::string name;
  // Group keys a run must carry with these values. Layout rows may name only a
  // few keys; derived rows name all of them and match exactly, so that a group
  // is never swallowed by another one with fewer keys.
  std::map<std::string, std::string> match;
  bool match_exactly = false;
  bool rule_above = false;  // a \midrule before this row, e.g. to set "Ours" apart
};

// Where a column's numbers come from: a final metric (shown in percent) or any
// number of summary.json (trainable parameters, training images/s, wall time).
enum class MetricSource { kFinal, kSummary };

// Which mean of a column is set in bold.
enum class BestRule { kHighest, kLowest, kNone };

struct MetricSpec {
  // kFinal: key of summary.json "final" ("miou", "per_class_dsc.liver");
  // kSummary: dotted path into summary.json ("trainable.total").
  std::string key;
  std::string name;  // column header ("mIoU", "Params (K)")
  MetricSource source = MetricSource::kFinal;
  double scale = 100.0;  // shown value = stored value × scale (fractions → percent, counts → K)
  bool show_std = true;  // false: mean only, e.g. parameter counts, equal for every seed
  BestRule best = BestRule::kHighest;
  int decimals = -1;  // digits after the point; -1: the table's
};

struct ColumnGroup {
  std::string dataset;     // summary.json "dataset"
  std::string experiment;  // summary.json "experiment" (the config's run.name); empty: any
  std::string name;        // header over the group ("COCO")
  std::vector<MetricSpec> metrics;
};

struct TableLayout {
  std::string caption;
  std::string label;
  std::string row_header = "Method";
  std::string baseline;  // display name of the row deltas are taken against; empty: none
  int decimals = 1;
  // Seeds every cell should have (e.g. the configs' run.seeds); a cell lacking one is
  // flagged even when no run of the table has it.
  std::vector<int> seeds;
  // Images per optimizer step over all ranks (summary.json global_batch) that every run
  // should have trained with, as the paper's one image; a cell trained otherwise is
  // flagged. 0: any.
  int64_t global_batch = 0;
  std::vector<ColumnGroup> columns;
  std::vector<RowSpec> rows;
};

// The part of a run's group that tells rows apart: every group key except those of
// the columns, "run.dataset" and "run.name" (a sweep over datasets gives columns).
std::map<std::string, std::string> row_identity(const RunRecord& run);

bool row_matches(const RowSpec& row, const RunRecord& run);

// The run belongs to the column group: its dataset, and its experiment when the group names one.
bool column_matches(const ColumnGroup& group, const RunRecord& run);

// A run's batch, from its summary.json: images per optimizer step over all ranks
// (global_batch; train.images_per_step is per rank, so runs of one config launched on
// different rank counts trained differently) and the rank count (world_size). Summaries
// written before global_batch existed give the rank count alone.
struct RunBatch {
  std::optional<int64_t> global_batch;
  std::optional<int64_t> world_size;
};
RunBatch batch_of(const RunRecord& run);
// "batch 8 on 8 rank(s)"; "2 rank(s)" without global_batch; "" without either.
std::string describe(const RunBatch& batch);

// The runs of one row in one column group, as tables average them and figures plot
// them: one completed run per seed, and why every other run was left out.
struct CellRuns {
  std::map<int, const RunRecord*> completed_by_seed;  // a seed that ran twice: the first run directory
  std::vector<std::string> exclusions;                 // "excluded lora-seed=2 (failed: out of memory)"
  // The seeds the runs' configs ask for (summary.json "seeds") and the runs' own, failed ones included.
  std::set<int> expected_seeds;
  std::string experiment;                              // of the runs (one, or the error below); empty: no runs
};

// Throws std::runtime_error when the row matches runs of more than one group, of more
// than one experiment or of more than one batch (ranks × images per step) there
// (averaging them would pass different configurations off as seeds), listing them.
CellRuns select_cell_runs(const std::vector<RunRecord>& runs, const RowSpec& row, const ColumnGroup& column);

// The run's value of the metric, scaled for display; none when the run lacks it.
std::optional<double> metric_value(const RunRecord& run, const MetricSpec& metric);

// "mIoU" for "miou", "liver DSC" for "per_class_dsc.liver", the key otherwise.
std::string default_metric_name(const std::string& key);

// Throws std::runtime_error naming the file and the offending entry.
TableLayout load_layout(const std::filesystem::path& path);

// One row per distinct row identity (named "parser (layers=conv, train=coefficients)"),
// one column group per dataset and experiment (named "coco", or "coco (efficiency)"
// when runs of several experiments share the dataset) with the overall metrics (miou,
// f1, dsc, then the rest alphabetically; per-class scores only through a layout file).
TableLayout derive_layout(const std::vector<RunRecord>& runs);

}  // namespace sparser::analysis
