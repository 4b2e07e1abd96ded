// The shipped layouts (experiments/table*_layout.toml) against the runs their
// experiment configs produce: the grids are expanded by the trainer's own sweep code,
// each run becomes a synthetic run directory with the summary.json fields and the
// config.toml the trainer writes, and every layout must then place every run of its
// configs in exactly one cell, with all seeds and no footnote — also when the runs
// of all experiments are read together (as `sparser_analyze table runs/` would).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "config/sweep.h"
#include "config/toml_section.h"
#include "results_table.h"
#include "run_discovery.h"
#include "table_layout.h"
#include "table_writers.h"

namespace sparser::analysis {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kExperiments = fs::path(SPARSER_SOURCE_DIR) / "experiments";

struct TableSpec {
  std::string layout;
  std::vector<std::string> configs;
};

const std::vector<TableSpec> kTables = {
    {"table1_layout.toml", {"ablation_layers.toml"}},
    {"table2_layout.toml", {"ablation_components.toml"}},
    {"table3_layout.toml", {"abdomenct.toml", "coco.toml", "voc.toml", "nwpu.toml", "whu.toml"}},
    {"table4_layout.toml", {"efficiency.toml"}},
    {"table5_layout.toml", {"ssdd.toml"}},
    {"demo_layout.toml", {"demo.toml"}},
};

class AnalysisLayouts : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("sparser_analysis_layouts_" + std::to_string(std::random_device{}()));
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes the runs of one config as sparser_run would lay them out; returns how many.
  size_t write_runs(const std::string& config_name) {
    const std::string source = (kExperiments / config_name).string();
    return write_runs(config::parse_toml_file(source), source);
  }
  size_t write_runs(const toml::table& config, const std::string& source) {
    const auto runs = config::expand_runs(config, source);
    for (const auto& run : runs) {
      const fs::path dir = root_ / run.config.run.name / run.id;
      fs::create_directories(dir);
      json final_metrics;
      for (const auto& metric : run.config.eval.metrics) final_metrics[metric] = 0.5 + 0.01 * run.seed;
      const json summary = {{"schema", 1},
                            {"run_id", run.id},
                            {"experiment", run.config.run.name},
                            {"dataset", run.config.run.dataset},
                            {"seed", run.seed},
                            {"seeds", run.all_seeds},
                            {"status", "completed"},
                            {"error", ""},
                            {"group", run.group},
                            {"trainable", {{"total", 4058852}}},
                            {"final", final_metrics},
                            {"train_images_per_second", 5.8},
                            {"world_size", 1},
                            {"global_batch", 1}};
      std::ofstream(dir / "summary.json") << summary.dump(2);
      std::ofstream(dir / "config.toml") << config::to_toml(run.config);
    }
    return runs.size();
  }

  std::vector<RunRecord> read_runs(const std::vector<std::string>& globs) const {
    std::vector<RunRecord> runs;
    for (const auto& dir : find_run_dirs(globs)) runs.push_back(load_run(dir));
    return runs;
  }

  // The table of `spec`'s layout over fresh runs of its configs; `runs` gets their number.
  ResultsTable fresh_table(const TableSpec& spec, size_t* runs = nullptr) {
    fs::remove_all(root_);
    size_t written = 0;
    std::vector<std::string> dirs;
    for (const auto& config : spec.configs) {
      written += write_runs(config);
      dirs.push_back((root_ / fs::path(config).stem()).string());
    }
    if (runs) *runs = written;
    return build_results_table(read_runs(dirs), load_layout(kExperiments / spec.layout));
  }

  // Every run in exactly one cell of every metric column, every cell complete.
  void expect_complete(const ResultsTable& table, size_t runs) const {
    for (const auto& note : table.notes)
      ADD_FAILURE() << table.rows[note.row].name << ", " << table.layout.columns[note.column_group].name << ": "
                    << note.text;
    size_t column = 0;
    for (const auto& group : table.layout.columns)
      for (size_t m = 0; m < group.metrics.size(); ++m, ++column) {
        size_t averaged = 0;
        for (const auto& row : table.rows) {
          EXPECT_TRUE(row.cells[column].has_value) << row.name << ", " << group.name << " " << group.metrics[m].name;
          averaged += row.cells[column].seeds;
        }
        // A column group sees the runs of one config; table 3 has one group per config.
        EXPECT_EQ(averaged * table.layout.columns.size(), runs) << group.name << " " << group.metrics[m].name;
      }
  }

  fs::path root_;
};

TEST_F(AnalysisLayouts, EachLayoutPlacesEveryRunOfItsConfigs) {
  for (const auto& spec : kTables) {
    SCOPED_TRACE(spec.layout);
    size_t runs = 0;
    const ResultsTable table = fresh_table(spec, &runs);
    expect_complete(table, runs);
  }
}

TEST_F(AnalysisLayouts, LayoutsKeepToTheirExperimentAmongAllRuns) {
  std::map<std::string, size_t> runs_of;
  for (const auto& spec : kTables)
    for (const auto& config : spec.configs) runs_of[spec.layout] += write_runs(config);
  const auto all_runs = read_runs({root_.string() + "/*"});
  for (const auto& spec : kTables) {
    SCOPED_TRACE(spec.layout);
    expect_complete(build_results_table(all_runs, load_layout(kExperiments / spec.layout)), runs_of[spec.layout]);
  }
}

TEST_F(AnalysisLayouts, EveryLayoutsTableCompilesWithPdflatex) {
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0) GTEST_SKIP() << "pdflatex is not on PATH";
  for (const auto& spec : kTables) {
    SCOPED_TRACE(spec.layout);
    const ResultsTable table = fresh_table(spec);
    std::ofstream(root_ / "table.tex") << render_latex(table, {PlusMinusStyle::kLatex, true});
    const std::string command = "cd '" + root_.string() +
                                "' && pdflatex -interaction=nonstopmode -halt-on-error table.tex > pdflatex.log 2>&1";
    EXPECT_EQ(WEXITSTATUS(std::system(command.c_str())), 0) << std::ifstream(root_ / "pdflatex.log").rdbuf();
  }
}

TEST_F(AnalysisLayouts, TablesHaveThePapersShape) {
  // Table 3: mean ± std, no deltas. Tables 1, 2 and 5: the mean and its delta to the
  // decoder-only baseline, no std (table 2's parameter count too).
  for (const auto& spec : kTables) {
    const bool table3 = spec.layout == "table3_layout.toml";
    if (!table3 && spec.layout != "table1_layout.toml" && spec.layout != "table2_layout.toml" &&
        spec.layout != "table5_layout.toml")
      continue;
    SCOPED_TRACE(spec.layout);
    const ResultsTable table = fresh_table(spec);
    for (const auto& row : table.rows)
      for (const auto& cell : row.cells) {
        EXPECT_EQ(cell.has_delta, !table3 && !row.baseline) << row.name;
        EXPECT_EQ(cell.show_std, table3) << row.name;
      }
  }
}

TEST_F(AnalysisLayouts, RunsOfAnotherBatchThanThePapersOneImageAreFlagged) {
  // `mpirun -np 8` trains with 8 images per step: the layouts of the paper's tables
  // (global_batch = 1) mark such cells instead of passing them off as the paper's setting.
  write_runs("efficiency.toml");
  const auto lora = root_ / "efficiency" / "lora-rank=4-targets=q+v-seed=1" / "summary.json";
  auto summary = json::parse(std::ifstream(lora));
  summary["world_size"] = 8;
  summary["global_batch"] = 8;
  std::ofstream(lora) << summary.dump();
  const auto layout = load_layout(kExperiments / "table4_layout.toml");
  const ResultsTable table = build_results_table(read_runs({(root_ / "efficiency").string()}), layout);
  ASSERT_EQ(table.notes.size(), 1u);
  EXPECT_EQ(table.notes[0].kind, NoteKind::kOtherBatch);
  EXPECT_EQ(table.rows[table.notes[0].row].name, "LoRA");
  EXPECT_EQ(table.notes[0].text, "trained with batch 8 on 8 rank(s), not the layout's 1 image(s) per step");
  EXPECT_NE(render_latex(table, {PlusMinusStyle::kLatex, true}).find("$^{\\P}$ LoRA, COCO: trained with batch 8"),
            std::string::npos);
}

TEST_F(AnalysisLayouts, Table4ShowsParametersInKAndImagesPerSecond) {
  write_runs("efficiency.toml");
  const ResultsTable table =
      build_results_table(read_runs({(root_ / "efficiency").string()}), load_layout(kExperiments / "table4_layout.toml"));
  ASSERT_EQ(table.rows.size(), 5u);
  const Cell& params = table.rows[4].cells[0];
  EXPECT_DOUBLE_EQ(params.mean, 3963.7);  // 4058852 / 1024, as the paper's "3963.7"
  EXPECT_FALSE(params.show_std);
  EXPECT_FALSE(params.best);
  EXPECT_DOUBLE_EQ(table.rows[4].cells[1].mean, 5.8);
  EXPECT_TRUE(table.notes.empty());  // one configured seed: no "single seed" footnotes
}

// The group keys as the trainer's sweep writes them: a sweep over run.dataset gives
// columns, one over a data setting gives rows.
TEST_F(AnalysisLayouts, DerivedLayoutOfADatasetAndDataSettingSweep) {
  const std::string source = (kExperiments / "demo.toml").string();
  toml::table config = config::parse_toml_file(source);
  config["sweep"].as_table()->insert_or_assign("run.dataset", toml::array{"synA", "synB"});
  config["sweep"].as_table()->insert_or_assign("data.box_jitter", toml::array{0, 5});
  const size_t runs = write_runs(config, source);
  const TableLayout derived = derive_layout(read_runs({(root_ / "demo").string()}));
  ASSERT_EQ(derived.columns.size(), 2u);
  EXPECT_EQ(derived.columns[0].dataset, "synA");
  EXPECT_EQ(derived.columns[1].dataset, "synB");
  ASSERT_EQ(derived.rows.size(), 6u);  // three methods × two box jitters
  EXPECT_EQ(derived.rows[0].name, "decoder_only (box_jitter=0)");
  expect_complete(build_results_table(read_runs({(root_ / "demo").string()}), derived), runs);
}

// The configs are copies (TOML configs have no include): the comparison configs may
// differ only in what names their dataset, and every SonarSAM-style config trains alike.
TEST(ExperimentConfigs, CopiesDifferOnlyInTheirDataset) {
  auto settings = [](const std::string& name, std::initializer_list<const char*> drop_train_keys) {
    toml::table config = config::parse_toml_file((kExperiments / name).string());
    for (const char* key : {"name", "dataset"}) config["run"].as_table()->erase(key);
    for (const char* key : {"train", "val"}) config["data"].as_table()->erase(key);
    for (const char* key : drop_train_keys) config["train"].as_table()->erase(key);
    return config;
  };
  const toml::table coco = settings("coco.toml", {});
  for (const char* name : {"voc.toml", "nwpu.toml", "whu.toml", "ssdd.toml"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(settings(name, {}), coco);
  }
  // Table 4 times whole steps: efficiency.toml alone turns the trunk cache off.
  for (const char* name : {"ablation_layers.toml", "ablation_components.toml", "efficiency.toml"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(*settings(name, {"epochs", "trunk_cache"})["train"].as_table(),
              *settings("coco.toml", {"epochs"})["train"].as_table());
    EXPECT_EQ(*settings(name, {})["model"].as_table(), *coco["model"].as_table());
  }
  EXPECT_EQ(config::parse_toml_file((kExperiments / "efficiency.toml").string())["train"]["trunk_cache"].value_or(""),
            std::string("off"));
}

}  // namespace
}  // namespace sparser::analysis
