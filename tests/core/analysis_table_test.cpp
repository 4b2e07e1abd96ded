// Tables from synthetic run directories: grouping, mean and sample std over
// seeds, bold best, deltas, markers for missing seeds / failed runs / single
// seeds, and the exact LaTeX, Markdown and CSV text.
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
  std::string dataset;
  json group;
  int seed;
  double miou, second;  // second: f1 on coco, dsc on isic
  std::string status = "completed";
  std::string error = "";
  std::string id_suffix = "";  // tells apart the run ids of groups with the same method
  int ranks = 0;               // world_size and global_batch (one image per rank); 0: not written
};

class AnalysisTable : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("sparser_analysis_table_" + std::to_string(std::random_device{}()));
    fs::create_directories(root_);
    const json decoder = {{"method.name", "decoder"}};
    const json lora = {{"method.name", "lora"}, {"method.rank", 4}};
    const json parser = {{"method.name", "parser"}, {"method.layers", "conv"}, {"method.train", "coefficients"}};
    // COCO: three seeds each, but LoRA's seed 2 failed.
    for (int seed = 1; seed <= 3; ++seed) {
      write({"coco", decoder, seed, 0.798 + 0.002 * seed, 0.878 + 0.002 * seed});
      write({"coco", parser, seed, 0.838 + 0.002 * seed, 0.888 + 0.002 * seed});
    }
    write({"coco", lora, 1, 0.820, 0.890});
    write({"coco", lora, 2, 0.0, 0.0, "failed", "CUDA out of memory"});
    write({"coco", lora, 3, 0.824, 0.894});
    // ISIC: three seeds for the baselines, only seed 1 for PARSER.
    for (int seed = 1; seed <= 3; ++seed) {
      write({"isic", decoder, seed, 0.69 + 0.01 * seed, 0.79 + 0.01 * seed});
      write({"isic", lora, seed, 0.73, 0.83});
    }
    write({"isic", parser, 1, 0.75, 0.85});
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const SyntheticRun& spec) {
    std::string run_id = spec.dataset + "-" + spec.group["method.name"].get<std::string>() + spec.id_suffix +
                         "-seed=" + std::to_string(spec.seed);
    json group = spec.group;
    group["run.dataset"] = spec.dataset;  // as a sweep over datasets writes it: columns, not rows
    json summary = {{"schema", 1},       {"run_id", run_id}, {"experiment", spec.dataset},
                    {"dataset", spec.dataset}, {"seed", spec.seed}, {"status", spec.status},
                    {"error", spec.error}, {"group", group}};
    if (spec.ranks > 0) {
      summary["world_size"] = spec.ranks;
      summary["global_batch"] = spec.ranks;
    }
    if (spec.status == "completed") {
      const char* second = spec.dataset == "coco" ? "f1" : "dsc";
      summary["final"] = {{"miou", spec.miou}, {second, spec.second}};
    }
    fs::create_directories(root_ / run_id);
    std::ofstream(root_ / run_id / "summary.json") << summary.dump(2);
  }

  std::vector<RunRecord> runs() const {
    std::vector<RunRecord> loaded;
    for (const auto& dir : find_run_dirs({root_.string()})) loaded.push_back(load_run(dir));
    return loaded;
  }

  TableLayout layout() const {
    const fs::path path = root_ / "layout.toml";
    std::ofstream(path) << R"toml(
[table]
caption = 'Segmentation results (\%).'  # literal string: LaTeX as is
label = "tab:main"
baseline = "Decoder FT"

[[columns]]
dataset = "coco"
name = "COCO"
metrics = ["miou", "f1"]

[[columns]]
dataset = "isic"
name = "ISIC"
metrics = ["miou", "dsc"]
metric_names = ["mIoU", "Dice"]

[[rows]]
name = "Decoder FT"
match = { "method.name" = "decoder" }

[[rows]]
name = "LoRA"
match = { "method.name" = "lora", "method.rank" = 4 }

[[rows]]
name = "SAM-PARSER (Ours)"
match = { "method.name" = "parser" }
rule_above = true
)toml";
    return load_layout(path);
  }

  fs::path root_;
};

TEST_F(AnalysisTable, AveragesSeedsWithSampleStd) {
  const ResultsTable table = build_results_table(runs(), layout());
  ASSERT_EQ(table.rows.size(), 3u);
  const Cell& decoder_isic_miou = table.rows[0].cells[2];
  EXPECT_EQ(decoder_isic_miou.seeds, 3);
  EXPECT_DOUBLE_EQ(decoder_isic_miou.mean, 71.0);
  EXPECT_DOUBLE_EQ(decoder_isic_miou.std, 1.0);  // values 70, 71, 72: n-1 gives 1.0 (n would give 0.8)
  const Cell& lora_coco_miou = table.rows[1].cells[0];
  EXPECT_EQ(lora_coco_miou.seeds, 2);  // the failed seed is not averaged
  EXPECT_DOUBLE_EQ(lora_coco_miou.mean, 82.2);
  EXPECT_DOUBLE_EQ(lora_coco_miou.std, 0.3);
}

TEST_F(AnalysisTable, BoldsAllTiedBestAndTakesDeltasFromDisplayedValues) {
  const ResultsTable table = build_results_table(runs(), layout());
  EXPECT_TRUE(table.rows[0].baseline);
  EXPECT_FALSE(table.rows[0].cells[1].has_delta);
  EXPECT_TRUE(table.rows[1].cells[1].best);  // LoRA and PARSER tie at 89.2 F1
  EXPECT_TRUE(table.rows[2].cells[1].best);
  EXPECT_FALSE(table.rows[0].cells[1].best);
  EXPECT_DOUBLE_EQ(table.rows[2].cells[0].delta, 4.0);
  EXPECT_DOUBLE_EQ(table.rows[1].cells[1].delta, 1.0);
}

TEST_F(AnalysisTable, FlagsMissingSeedsFailedRunsAndSingleSeeds) {
  const ResultsTable table = build_results_table(runs(), layout());
  EXPECT_TRUE(table.rows[0].cells[0].markers.empty());
  EXPECT_EQ(table.rows[1].cells[0].markers,
            (std::vector<NoteKind>{NoteKind::kMissingSeeds, NoteKind::kExcludedRuns}));
  EXPECT_EQ(table.rows[2].cells[3].markers, (std::vector<NoteKind>{NoteKind::kMissingSeeds, NoteKind::kSingleSeed}));
  ASSERT_EQ(table.notes.size(), 4u);
  EXPECT_EQ(table.notes[0].text, "missing seed 2 (2 of 3 seeds)");
  EXPECT_EQ(table.notes[2].text, "excluded coco-lora-seed=2 (failed: CUDA out of memory)");
}

TEST_F(AnalysisTable, LatexGolden) {
  const std::string expected = R"(\begin{table}[t]
  \centering
  \caption{Segmentation results (\%).}
  \label{tab:main}
  \begin{tabular}{lcccc}
    \toprule
    & \multicolumn{2}{c}{COCO} & \multicolumn{2}{c}{ISIC} \\
    \cmidrule(lr){2-3} \cmidrule(lr){4-5}
    Method & mIoU & F1 & mIoU & Dice \\
    \midrule
    Decoder FT & $80.2_{\pm0.2}$ & $88.2_{\pm0.2}$ & $71.0_{\pm1.0}$ & $81.0_{\pm1.0}$ \\
    LoRA & $82.2_{\pm0.3}^{\dagger\ddagger}$ (+2.0) & $\mathbf{89.2}_{\pm0.3}^{\dagger\ddagger}$ (+1.0) & $73.0_{\pm0.0}$ (+2.0) & $83.0_{\pm0.0}$ (+2.0) \\
    \midrule
    SAM-PARSER (Ours) & $\mathbf{84.2}_{\pm0.2}$ (+4.0) & $\mathbf{89.2}_{\pm0.2}$ (+1.0) & $\mathbf{75.0}^{\dagger\S}$ (+4.0) & $\mathbf{85.0}^{\dagger\S}$ (+4.0) \\
    \bottomrule
  \end{tabular}
  \par\smallskip
  {\footnotesize\raggedright
  $^{\dagger}$ LoRA, COCO: missing seed 2 (2 of 3 seeds).\par
  $^{\dagger}$ SAM-PARSER (Ours), ISIC: missing seeds 2, 3 (1 of 3 seeds).\par
  $^{\ddagger}$ LoRA, COCO: excluded coco-lora-seed=2 (failed: CUDA out of memory).\par
  $^{\S}$ SAM-PARSER (Ours), ISIC: single seed, no standard deviation.\par
  }
\end{table}
)";
  EXPECT_EQ(render_latex(build_results_table(runs(), layout()), {PlusMinusStyle::kLatex, false}), expected);
}

TEST_F(AnalysisTable, LatexUnicodeStyleAndStandalone) {
  const std::string latex = render_latex(build_results_table(runs(), layout()), {PlusMinusStyle::kUnicode, true});
  EXPECT_EQ(latex.rfind("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n", 0), 0u);
  EXPECT_NE(latex.find("Decoder FT & $80.2 \\pm 0.2$ & "), std::string::npos);
  EXPECT_NE(latex.find("$\\mathbf{84.2 \\pm 0.2}$ (+4.0)"), std::string::npos);
  EXPECT_EQ(latex.substr(latex.size() - 15), "\\end{document}\n");
}

TEST_F(AnalysisTable, MarkdownGolden) {
  const std::string expected = R"(**Table:** Segmentation results (\%).

| Method | COCO mIoU | COCO F1 | ISIC mIoU | ISIC Dice |
|:--|--:|--:|--:|--:|
| Decoder FT | 80.2 ± 0.2 | 88.2 ± 0.2 | 71.0 ± 1.0 | 81.0 ± 1.0 |
| LoRA | 82.2 ± 0.3†‡ (+2.0) | **89.2 ± 0.3**†‡ (+1.0) | 73.0 ± 0.0 (+2.0) | 83.0 ± 0.0 (+2.0) |
| SAM-PARSER (Ours) | **84.2 ± 0.2** (+4.0) | **89.2 ± 0.2** (+1.0) | **75.0**†§ (+4.0) | **85.0**†§ (+4.0) |

- † LoRA, COCO: missing seed 2 (2 of 3 seeds)
- † SAM-PARSER (Ours), ISIC: missing seeds 2, 3 (1 of 3 seeds)
- ‡ LoRA, COCO: excluded coco-lora-seed=2 (failed: CUDA out of memory)
- § SAM-PARSER (Ours), ISIC: single seed, no standard deviation
)";
  EXPECT_EQ(render_markdown(build_results_table(runs(), layout()), PlusMinusStyle::kUnicode), expected);
}

TEST_F(AnalysisTable, CsvGolden) {
  const std::string expected = R"(row,dataset,metric,mean,std,seeds,best,delta,notes
Decoder FT,COCO,mIoU,80.2,0.2,3,0,,
Decoder FT,COCO,F1,88.2,0.2,3,0,,
Decoder FT,ISIC,mIoU,71.0,1.0,3,0,,
Decoder FT,ISIC,Dice,81.0,1.0,3,0,,
LoRA,COCO,mIoU,82.2,0.3,2,0,+2.0,missing seed 2 (2 of 3 seeds); excluded coco-lora-seed=2 (failed: CUDA out of memory)
LoRA,COCO,F1,89.2,0.3,2,1,+1.0,missing seed 2 (2 of 3 seeds); excluded coco-lora-seed=2 (failed: CUDA out of memory)
LoRA,ISIC,mIoU,73.0,0.0,3,0,+2.0,
LoRA,ISIC,Dice,83.0,0.0,3,0,+2.0,
SAM-PARSER (Ours),COCO,mIoU,84.2,0.2,3,1,+4.0,
SAM-PARSER (Ours),COCO,F1,89.2,0.2,3,1,+1.0,
SAM-PARSER (Ours),ISIC,mIoU,75.0,,1,1,+4.0,"missing seeds 2, 3 (1 of 3 seeds); single seed, no standard deviation"
SAM-PARSER (Ours),ISIC,Dice,85.0,,1,1,+4.0,"missing seeds 2, 3 (1 of 3 seeds); single seed, no standard deviation"
)";
  EXPECT_EQ(render_csv(build_results_table(runs(), layout())), expected);
}

TEST_F(AnalysisTable, DerivedLayoutGroupsByEverythingButSeedAndDataset) {
  const TableLayout derived = derive_layout(runs());
  ASSERT_EQ(derived.rows.size(), 3u);
  EXPECT_EQ(derived.rows[0].name, "decoder");
  EXPECT_EQ(derived.rows[1].name, "lora (rank=4)");
  EXPECT_EQ(derived.rows[2].name, "parser (layers=conv, train=coefficients)");
  ASSERT_EQ(derived.columns.size(), 2u);
  EXPECT_EQ(derived.columns[0].dataset, "coco");
  ASSERT_EQ(derived.columns[0].metrics.size(), 2u);
  EXPECT_EQ(derived.columns[0].metrics[0].name, "mIoU");
  EXPECT_EQ(derived.columns[1].metrics[1].name, "DSC");
}

TEST_F(AnalysisTable, DatasetWithOnlyFailedRunsStillShowsFlaggedCells) {
  write({"ade", {{"method.name", "decoder"}}, 1, 0.0, 0.0, "interrupted"});
  const TableLayout derived = derive_layout(runs());
  ASSERT_EQ(derived.columns.size(), 3u);
  ASSERT_EQ(derived.columns[0].dataset, "ade");
  EXPECT_EQ(derived.columns[0].metrics.size(), 3u);  // miou, f1, dsc from the other datasets
  const ResultsTable table = build_results_table(runs(), derived);
  EXPECT_FALSE(table.rows[0].cells[0].has_value);
  EXPECT_EQ(table.rows[0].cells[0].markers, (std::vector<NoteKind>{NoteKind::kMissingSeeds, NoteKind::kExcludedRuns}));
}

TEST_F(AnalysisTable, RejectsAnUnknownBaselineAndAmbiguousRows) {
  TableLayout unknown = layout();
  unknown.baseline = "Adapter";
  EXPECT_THROW(build_results_table(runs(), unknown), std::runtime_error);
  TableLayout ambiguous = layout();
  ambiguous.rows.push_back({"Everything", {{"run.dataset", "coco"}}, false, false});
  EXPECT_THROW(build_results_table(runs(), ambiguous), std::runtime_error);
}

TEST_F(AnalysisTable, DataSettingsTellRowsApart) {
  // Decoder runs on COCO with another box jitter: another configuration, not more seeds.
  const json jittered = {{"method.name", "decoder"}, {"data.box_jitter", "20"}};
  write({"coco", jittered, 1, 0.20, 0.30, "completed", "", "-box_jitter=20"});
  write({"coco", jittered, 2, 0.0, 0.0, "failed", "node failure", "-box_jitter=20"});
  const TableLayout derived = derive_layout(runs());
  ASSERT_EQ(derived.rows.size(), 4u);
  EXPECT_EQ(derived.rows[1].name, "decoder (box_jitter=20)");
  const ResultsTable table = build_results_table(runs(), derived);
  EXPECT_EQ(table.rows[0].cells[0].seeds, 3);
  EXPECT_DOUBLE_EQ(table.rows[0].cells[0].mean, 80.2);  // the three runs without the jitter only
  EXPECT_EQ(table.rows[1].cells[0].seeds, 1);           // its failed seed is not filled by another group's
  EXPECT_DOUBLE_EQ(table.rows[1].cells[0].mean, 20.0);
  // "Decoder FT" matches method.name only, so it now spans two configurations.
  try {
    build_results_table(runs(), layout());
    ADD_FAILURE() << "no error for a row matching two groups";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("row 'Decoder FT' matches several groups"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("data.box_jitter=20"), std::string::npos) << e.what();
  }
}

TEST_F(AnalysisTable, RunsOfAnotherBatchAreNotAveragedAsSeeds) {
  // Decoder on COCO: seeds 1 and 2 again on one rank, seed 3 again on two ranks (a batch of
  // two images per step, since train.images_per_step is per rank).
  const json decoder = {{"method.name", "decoder"}};
  write({"coco", decoder, 1, 0.80, 0.88, "completed", "", "", 1});
  write({"coco", decoder, 2, 0.80, 0.88, "completed", "", "", 1});
  write({"coco", decoder, 3, 0.70, 0.78, "completed", "", "", 2});
  try {
    build_results_table(runs(), layout());
    ADD_FAILURE() << "no error for a cell mixing batches";
  } catch (const std::runtime_error& e) {
    const std::string error = e.what();
    EXPECT_NE(error.find("row 'Decoder FT' matches several groups"), std::string::npos) << error;
    EXPECT_NE(error.find("batch 2 on 2 rank(s)"), std::string::npos) << error;
    EXPECT_NE(error.find("run them on one rank count"), std::string::npos) << error;
  }
  write({"coco", decoder, 3, 0.81, 0.89, "completed", "", "", 1});  // rerun on one rank
  EXPECT_EQ(build_results_table(runs(), layout()).rows[0].cells[0].seeds, 3);
}

TEST_F(AnalysisTable, DuplicateSeedIsFlaggedNotAveraged) {
  write({"isic", {{"method.name", "lora"}, {"method.rank", 4}}, 1, 0.10, 0.10});  // same run id: overwrites seed 1
  fs::copy(root_ / "isic-lora-seed=1", root_ / "isic-lora-seed=1-rerun", fs::copy_options::recursive);
  const ResultsTable table = build_results_table(runs(), layout());
  EXPECT_EQ(table.rows[1].cells[2].seeds, 3);
  EXPECT_EQ(table.rows[1].cells[2].markers, (std::vector<NoteKind>{NoteKind::kExcludedRuns}));
  // Both runs have the run id isic-lora-seed=1: the note names their directories.
  ASSERT_EQ(table.notes.size(), 5u);
  EXPECT_EQ(table.notes[3].text, "excluded " + (root_ / "isic-lora-seed=1-rerun").string() +
                                     " (seed 1 already taken from " + (root_ / "isic-lora-seed=1").string() + ")");
}

TEST_F(AnalysisTable, ARunStoppedBeforeItsFirstEvaluationIsExcludedWithTheOthersTabulated) {
  // sparser_run writes "final": null until the first evaluation (a preempted or failed run).
  write({"coco", {{"method.name", "decoder"}}, 4, 0.0, 0.0, "interrupted"});
  json summary;
  std::ifstream(root_ / "coco-decoder-seed=4" / "summary.json") >> summary;
  summary["final"] = nullptr;
  summary["group"] = {{"method.name", "decoder"}, {"run.dataset", "coco"}};
  std::ofstream(root_ / "coco-decoder-seed=4" / "summary.json") << summary.dump();
  const ResultsTable table = build_results_table(runs(), layout());
  EXPECT_EQ(table.rows[0].cells[0].seeds, 3);
  EXPECT_EQ(table.rows[0].cells[0].markers,
            (std::vector<NoteKind>{NoteKind::kMissingSeeds, NoteKind::kExcludedRuns}));  // seed 4 of 4
}

TEST_F(AnalysisTable, AMalformedRecordOfTheMetricsLogNamesItsFileAndLine) {
  const fs::path log = root_ / "coco-decoder-seed=1" / "metrics.jsonl";
  std::ofstream(log) << R"({"type": "step", "step": 1, "loss": 0.5})" << "\n"
                     << R"({"type": "step", "step": 2, "loss": null})" << "\n";
  try {
    runs();
    ADD_FAILURE() << "no error for a step record whose loss is null";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(log.string() + ":2: ", 0), 0u) << e.what();
  }
}

TEST_F(AnalysisTable, SeedsTrainedUnderDifferentConfigsAreNotAveraged) {
  // Decoder on COCO: seed 3 trained after train.lr was edited in the config. Threads, seed
  // list (execution only), a key only one version of sparser writes and where the data
  // were (another machine's paths) are no difference.
  const auto write_config = [&](int seed, const std::string& lr, const std::string& extra) {
    std::ofstream(root_ / ("coco-decoder-seed=" + std::to_string(seed)) / "config.toml")
        << "[run]\nseeds = [" << seed << "]\nthreads = " << seed << "\n[train]\nlr = " << lr << "\n" << extra;
  };
  const std::string data = "[data]\ntrain = '/data/coco/train.manifest.json'\n";
  write_config(1, "0.0001", data);
  write_config(2, "0.0001", "warmup_steps = 0\n[data]\ntrain = '/scratch/7/coco/train.manifest.json'\n");
  write_config(3, "0.0003", data);
  try {
    build_results_table(runs(), layout());
    ADD_FAILURE() << "no error for seeds of one cell trained under different configs";
  } catch (const std::runtime_error& e) {
    const std::string error = e.what();
    EXPECT_NE(error.find("row 'Decoder FT' on dataset 'coco'"), std::string::npos) << error;
    EXPECT_NE(error.find("coco-decoder-seed=3/config.toml differ beyond the seed"), std::string::npos) << error;
    EXPECT_NE(error.find("train.lr: 0.0001 \u2192 0.0003"), std::string::npos) << error;
    EXPECT_EQ(error.find("warmup_steps"), std::string::npos) << error;
    EXPECT_EQ(error.find("threads"), std::string::npos) << error;
    EXPECT_EQ(error.find("data.train"), std::string::npos) << error;
  }
  write_config(3, "0.0001", data);
  EXPECT_EQ(build_results_table(runs(), layout()).rows[0].cells[0].seeds, 3);
}

TEST(AnalysisFormatting, EscapesLatexAndPrintsSignedDeltas) {
  EXPECT_EQ(escape_latex("lr=1e-4_a&b 50% #1 {x} ~^\\"),
            "lr=1e-4\\_a\\&b 50\\% \\#1 \\{x\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}");
  EXPECT_EQ(escape_latex("a<b>c|d"), "a\\textless{}b\\textgreater{}c\\textbar{}d");  // OT1: ¡ ¿ — otherwise
  // Non-ASCII: a command where pdflatex needs one, Latin-1 letters as they are, '?' for the
  // rest and for bytes that are not UTF-8 (a path in another encoding).
  EXPECT_EQ(escape_latex("\u2265 1.6 \u00b1 \u03c3, Z\u00fcrich"), "$\\geq$ 1.6 $\\pm$ $\\sigma$, Z\u00fcrich");
  EXPECT_EQ(escape_latex("\u6f22 \u00f0 a\xff\xc3"), "? ? a??");
  EXPECT_EQ(format_delta(1.25, 1), "+1.3");
  EXPECT_EQ(format_delta(-0.04, 1), "+0.0");
  EXPECT_EQ(format_delta(-0.2, 1), "-0.2");
  EXPECT_EQ(format_fixed(-0.0, 1), "0.0");
}

}  // namespace
}  // namespace sparser::analysis
