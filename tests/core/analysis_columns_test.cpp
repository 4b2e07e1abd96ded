// Table columns beyond the final metrics and what a cell is judged against:
// summary.json numbers (parameters in K, images/s) with their own unit, decimals,
// std and bold rule; column groups restricted to one experiment; the seeds a cell
// should have, from the layout and from the runs' config.toml; layout errors.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "results_table.h"
#include "run_discovery.h"
#include "table_layout.h"
#include "table_writers.h"

namespace sparser::analysis {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SyntheticRun {
  std::string experiment;
  std::string method;
  int seed;
  double miou;
  long trainable;
  double images_per_second;
};

class AnalysisColumns : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("sparser_analysis_columns_" + std::to_string(std::random_device{}()));
    for (int seed = 1; seed <= 2; ++seed) {
      write({"ablation", "decoder", seed, 0.829, 4058340, 6.0 + 0.1 * seed});
      write({"ablation", "parser", seed, 0.842, 4058852, 5.7 + 0.1 * seed});
      write({"main", "parser", seed, 0.700, 4058852, 5.0});  // same dataset, another experiment
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path write(const SyntheticRun& run) {
    const std::string run_id = run.method + "-seed=" + std::to_string(run.seed);
    const fs::path dir = root_ / run.experiment / run_id;
    fs::create_directories(dir);
    const json summary = {{"schema", 1},
                          {"run_id", run_id},
                          {"experiment", run.experiment},
                          {"dataset", "nwpu"},
                          {"seed", run.seed},
                          {"status", "completed"},
                          {"group", {{"method.name", run.method}}},
                          {"trainable", {{"total", run.trainable}, {"by_module", {{"mask_decoder", 4058340}}}}},
                          {"final", {{"miou", run.miou}}},
                          {"train_images_per_second", run.images_per_second}};
    std::ofstream(dir / "summary.json") << summary.dump(2);
    return dir;
  }

  std::vector<RunRecord> runs() const {
    std::vector<RunRecord> loaded;
    for (const auto& dir : find_run_dirs({(root_ / "*").string()})) loaded.push_back(load_run(dir));
    return loaded;
  }

  TableLayout layout(const std::string& table_extra = "", const std::string& column_extra = "") const {
    const fs::path path = root_ / "layout.toml";
    std::ofstream(path) << "[table]\nbaseline = \"Baseline\"\n" << table_extra << R"toml(
[[columns]]
dataset = "nwpu"
experiment = "ablation"
name = "NWPU"
metrics = [
  "miou",
  { summary = "trainable.total", name = "Params (K)", unit = "K", std = false, best = "lowest" },
  { summary = "train_images_per_second", name = "Fps", decimals = 2, best = "none" },
]
)toml" << column_extra << R"toml(
[[rows]]
name = "Baseline"
match = { "method.name" = "decoder" }

[[rows]]
name = "PARSER"
match = { "method.name" = "parser" }
)toml";
    return load_layout(path);
  }

  fs::path root_;
};

TEST_F(AnalysisColumns, SummaryNumbersInTheirUnitWithDeltas) {
  const ResultsTable table = build_results_table(runs(), layout());
  ASSERT_EQ(table.rows.size(), 2u);
  const Cell& params = table.rows[1].cells[1];
  EXPECT_DOUBLE_EQ(params.mean, 3963.7);  // 4058852 / 1024
  EXPECT_DOUBLE_EQ(params.delta, 0.5);    // 512 coefficients
  EXPECT_TRUE(table.rows[0].cells[1].best);  // best = "lowest"
  EXPECT_FALSE(params.best);
  const Cell& speed = table.rows[1].cells[2];
  EXPECT_EQ(speed.decimals, 2);
  EXPECT_DOUBLE_EQ(speed.mean, 5.85);
  EXPECT_DOUBLE_EQ(speed.std, 0.07);
  EXPECT_DOUBLE_EQ(speed.delta, -0.3);
  EXPECT_FALSE(table.rows[0].cells[2].best);  // best = "none"
  EXPECT_DOUBLE_EQ(table.rows[1].cells[0].mean, 84.2);  // the metric stays in percent
  EXPECT_TRUE(table.notes.empty());
}

TEST_F(AnalysisColumns, LatexShowsNoStdWhereTheLayoutSaysSo) {
  const std::string latex = render_latex(build_results_table(runs(), layout()), {PlusMinusStyle::kLatex, false});
  EXPECT_NE(latex.find("Baseline & $82.9_{\\pm0.0}$ & $\\mathbf{3963.2}$ & $6.15_{\\pm0.07}$ \\\\"),
            std::string::npos)
      << latex;
  EXPECT_NE(latex.find("PARSER & $\\mathbf{84.2}_{\\pm0.0}$ (+1.3) & $3963.7$ (+0.5) & $5.85_{\\pm0.07}$ (-0.30) \\\\"),
            std::string::npos)
      << latex;
  EXPECT_NE(latex.find("Method & mIoU & Params (K) & Fps \\\\"), std::string::npos) << latex;
}

TEST_F(AnalysisColumns, ARunWithoutTheSummaryFieldIsFlagged) {
  const fs::path dir = root_ / "ablation" / "parser-seed=2";
  json summary = json::parse(std::ifstream(dir / "summary.json"));
  summary.erase("train_images_per_second");
  std::ofstream(dir / "summary.json") << summary.dump();
  const ResultsTable table = build_results_table(runs(), layout());
  EXPECT_EQ(table.rows[1].cells[2].seeds, 1);
  ASSERT_EQ(table.notes.size(), 1u);
  EXPECT_EQ(table.notes[0].text, "excluded parser-seed=2 (no train_images_per_second)");
}

TEST_F(AnalysisColumns, ColumnGroupsKeepToTheirExperiment) {
  const ResultsTable table = build_results_table(runs(), layout());
  EXPECT_DOUBLE_EQ(table.rows[1].cells[0].mean, 84.2);  // the "main" runs (70.0) are not averaged in
  // Without the experiment, PARSER's cell would take the runs of both: an error naming them.
  TableLayout any_experiment = layout();
  any_experiment.columns[0].experiment.clear();
  try {
    build_results_table(runs(), any_experiment);
    ADD_FAILURE() << "no error for a cell of two experiments";
  } catch (const std::runtime_error& e) {
    const std::string error = e.what();
    EXPECT_NE(error.find("row 'PARSER' matches several groups on dataset 'nwpu'"), std::string::npos) << error;
    EXPECT_NE(error.find("name the column's experiment"), std::string::npos) << error;
    EXPECT_NE(error.find("experiment 'main' {method.name=parser}, e.g. " + (root_ / "main" / "parser-seed=1").string()),
              std::string::npos)
        << error;
  }
}

TEST_F(AnalysisColumns, DerivedLayoutKeepsExperimentsApart) {
  // The ablation's PARSER seed 2 failed: the other experiment's seed 2 must not take its place.
  const fs::path failed = root_ / "ablation" / "parser-seed=2" / "summary.json";
  json summary = json::parse(std::ifstream(failed));
  summary["status"] = "failed";
  std::ofstream(failed) << summary.dump();
  fs::remove_all(root_ / "main" / "parser-seed=2");  // "main" runs seed 1 only
  const TableLayout derived = derive_layout(runs());
  ASSERT_EQ(derived.columns.size(), 2u);
  EXPECT_EQ(derived.columns[0].name, "nwpu (ablation)");
  EXPECT_EQ(derived.columns[1].name, "nwpu (main)");
  const ResultsTable table = build_results_table(runs(), derived);
  ASSERT_EQ(table.rows.size(), 2u);
  EXPECT_EQ(table.rows[1].cells[0].seeds, 1);
  EXPECT_DOUBLE_EQ(table.rows[1].cells[0].mean, 84.2);
  EXPECT_DOUBLE_EQ(table.rows[1].cells[1].mean, 70.0);
  EXPECT_FALSE(table.rows[0].cells[1].has_value);  // no decoder runs in "main"
  // Seeds are expected per experiment: the ablation's failed seed 2 is missing, while
  // "main" lacks nothing although the ablation ran seed 2.
  EXPECT_EQ(table.rows[1].cells[0].markers,
            (std::vector<NoteKind>{NoteKind::kMissingSeeds, NoteKind::kExcludedRuns, NoteKind::kSingleSeed}));
  EXPECT_TRUE(table.rows[1].cells[1].markers.empty());
}

TEST_F(AnalysisColumns, LayoutSeedsFlagSeedsThatNeverRan) {
  const ResultsTable table = build_results_table(runs(), layout("seeds = [1, 2, 3]\n"));
  ASSERT_EQ(table.notes.size(), 2u);
  EXPECT_EQ(table.notes[0].text, "missing seed 3 (2 of 3 seeds)");
  EXPECT_EQ(table.rows[0].cells[0].markers, (std::vector<NoteKind>{NoteKind::kMissingSeeds}));
}

TEST_F(AnalysisColumns, ConfiguredSeedsOfTheRunsFlagSeedsThatNeverRan) {
  // The PARSER runs' summaries say their config asks for seeds 1-3; the baseline's for 1-2.
  auto set_seeds = [&](const std::string& run_id, const json& seeds) {
    const auto path = root_ / "ablation" / run_id / "summary.json";
    json summary = json::parse(std::ifstream(path));
    summary["seeds"] = seeds;
    std::ofstream(path) << summary.dump(2);
  };
  for (int seed = 1; seed <= 2; ++seed) {
    set_seeds("parser-seed=" + std::to_string(seed), {1, 2, 3});
    set_seeds("decoder-seed=" + std::to_string(seed), {1, 2});
  }
  const auto loaded = runs();
  EXPECT_EQ(loaded[2].configured_seeds, (std::vector<int>{1, 2, 3}));
  const ResultsTable table = build_results_table(loaded, layout());
  ASSERT_EQ(table.notes.size(), 1u);
  EXPECT_EQ(table.notes[0].row, 1u);
  EXPECT_EQ(table.notes[0].text, "missing seed 3 (2 of 3 seeds)");
}

TEST_F(AnalysisColumns, SingleSeedIsNotedOnlyWhereMoreWereExpected) {
  fs::remove_all(root_ / "ablation" / "decoder-seed=2");
  fs::remove_all(root_ / "ablation" / "parser-seed=2");
  EXPECT_TRUE(build_results_table(runs(), layout("seeds = [1]\n")).notes.empty());
  const ResultsTable expected_two = build_results_table(runs(), layout("seeds = [1, 2]\n"));
  EXPECT_EQ(expected_two.rows[0].cells[0].markers,
            (std::vector<NoteKind>{NoteKind::kMissingSeeds, NoteKind::kSingleSeed}));
}

TEST_F(AnalysisColumns, LayoutErrorsNameTheEntry) {
  auto error_of = [&](const std::string& table_extra, const std::string& column_extra) {
    try {
      layout(table_extra, column_extra);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("seed = [1]\n", "").find("table: unknown key 'seed'"), std::string::npos);
  EXPECT_NE(error_of("", "experiments = 'x'\n").find("columns[0]: unknown key 'experiments'"), std::string::npos);
  EXPECT_NE(error_of("seeds = ['one']\n", "").find("table.seeds must be an array of integers"), std::string::npos);
  const fs::path path = root_ / "bad.toml";
  auto metric_error = [&](const std::string& metric) {
    std::ofstream(path) << "[[columns]]\ndataset = 'nwpu'\nmetrics = [" << metric
                        << "]\n[[rows]]\nname = 'x'\nmatch = { 'method.name' = 'x' }\n";
    try {
      load_layout(path);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(metric_error("{ summary = 'a', final = 'b' }").find("columns[0].metrics[0] needs exactly one of"),
            std::string::npos);
  EXPECT_NE(metric_error("{ summary = 'a', unit = 'k' }").find("unit must be percent, K, M or none"),
            std::string::npos);
  EXPECT_NE(metric_error("{ final = 'miou', best = 'max' }").find("best must be highest, lowest or none"),
            std::string::npos);
  EXPECT_NE(metric_error("{ final = 'miou', colour = 'red' }").find("unknown key 'colour'"), std::string::npos);
  EXPECT_EQ(metric_error("{ final = 'miou', decimals = 2 }"), "no error");
  // A syntax error names its line and column.
  EXPECT_NE(metric_error("'miou' 'f1'").find(path.string() + ":3:"), std::string::npos) << metric_error("'miou' 'f1'");
}

TEST_F(AnalysisColumns, RowsMatchSweptNumbersWrittenAnyWay) {
  // summary.json writes a swept lr as 0.0003; the layout may write it as 3e-4.
  for (int seed = 1; seed <= 2; ++seed) {
    const fs::path dir = write({"ablation", "lora", seed, 0.85, 4058340, 5.0});
    json summary;
    std::ifstream(dir / "summary.json") >> summary;
    summary["group"]["train.lr"] = 0.0003;
    summary["group"]["method.rank"] = 4;
    std::ofstream(dir / "summary.json") << summary.dump();
  }
  const fs::path path = root_ / "lr.toml";
  std::ofstream(path) << "[[columns]]\ndataset = 'nwpu'\nexperiment = 'ablation'\nmetrics = ['miou']\n"
                      << "[[rows]]\nname = 'LoRA'\nmatch = { 'method.name' = 'lora', 'train.lr' = 3e-4, "
                      << "'method.rank' = 4 }\n";
  const ResultsTable table = build_results_table(runs(), load_layout(path));
  EXPECT_EQ(table.rows[0].cells[0].seeds, 2);
}

}  // namespace
}  // namespace sparser::analysis
