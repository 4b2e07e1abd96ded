// Figures from synthetic runs with loss, eval and σ logs: the expected files
// appear, are non-empty PNGs of the expected size, with pgfplots beside them.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "figures.h"
#include "line_plot.h"
#include "run_discovery.h"

namespace sparser::analysis {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class AnalysisFigures : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("sparser_analysis_figures_" + std::to_string(std::random_device{}()));
    for (int seed = 1; seed <= 2; ++seed) {
      write_run("decoder", {{"method.name", "decoder"}}, seed, false);
      write_run("parser", {{"method.name", "parser"}, {"method.layers", "conv"}}, seed, true);
    }
  }
  void TearDown() override { fs::remove_all(root_); }

  // The runs of an experiment go to root_/<experiment>, the others to root_/runs.
  void write_run(const std::string& method, const json& group, int seed, bool with_sigma,
                 const std::string& experiment = "") {
    const std::string run_id = method + "-seed=" + std::to_string(seed);
    const fs::path dir = root_ / (experiment.empty() ? "runs" : experiment) / run_id;
    fs::create_directories(dir);
    json summary = {{"schema", 1}, {"run_id", run_id}, {"dataset", "coco"}, {"seed", seed},
                    {"status", "completed"}, {"group", group}, {"final", {{"miou", 0.8}, {"f1", 0.9}}}};
    if (!experiment.empty()) summary["experiment"] = experiment;
    std::ofstream(dir / "summary.json") << summary.dump();
    std::ofstream log(dir / "metrics.jsonl");
    for (int step = 10; step <= 100; step += 10)
      log << json{{"type", "step"}, {"epoch", 1 + step / 50}, {"step", step}, {"loss", 1.0 / step + 0.01 * seed}}.dump()
          << "\n";
    for (int epoch = 1; epoch <= 3; ++epoch)
      log << json{{"type", "eval"}, {"epoch", epoch}, {"metrics", {{"miou", 0.7 + 0.03 * epoch}, {"f1", 0.8}}}}.dump()
          << "\n";
    if (with_sigma)
      for (const char* layer : {"image_encoder.neck.0", "image_encoder.neck.2"})
        log << json{{"type", "sigma"}, {"layer", layer}, {"pretrained", {4.0, 2.0, 1.0}},
                    {"learned", {4.4, 1.9, 0.5 * seed}}}.dump()
            << "\n";
    log << R"({"type": "step", "step": 110, "lo)";  // a run killed mid-write
  }

  fs::path root_;
};

TEST_F(AnalysisFigures, WritesCurvesAndSigmaFiguresOfTheExpectedSize) {
  std::vector<RunRecord> runs;
  for (const auto& dir : find_run_dirs({(root_ / "runs").string()})) runs.push_back(load_run(dir));
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[2].losses.size(), 10u);  // the truncated last line is dropped
  ASSERT_EQ(runs[2].sigmas.size(), 2u);

  const fs::path out = root_ / "figures";
  const auto files = write_figures(runs, derive_layout(runs), out);
  const std::vector<std::pair<fs::path, int>> expected_pngs = {
      {out / "coco/loss.png", kPanelHeight},
      {out / "coco/miou.png", kPanelHeight},
      {out / "coco/f1.png", kPanelHeight},
      {out / "coco/sigma/parser_layers=conv/image_encoder.neck.0.png", 2 * kPanelHeight},
      {out / "coco/sigma/parser_layers=conv/image_encoder.neck.2.png", 2 * kPanelHeight},
      {out / "coco/sigma/parser_layers=conv/ratio_by_layer.png", kPanelHeight}};
  EXPECT_EQ(files.size(), 2 * expected_pngs.size());  // a .tex beside each PNG
  for (const auto& [png, height] : expected_pngs) {
    SCOPED_TRACE(png.string());
    ASSERT_TRUE(fs::exists(png));
    const cv::Mat image = cv::imread(png.string());
    EXPECT_EQ(image.cols, kPlotWidth);
    EXPECT_EQ(image.rows, height);
    cv::Mat gray;
    cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
    EXPECT_GT(cv::countNonZero(gray < 128), 1000);  // axes, text and lines were drawn
    fs::path tex = png;
    tex.replace_extension(".tex");
    EXPECT_GT(fs::file_size(tex), 100u);
  }
  EXPECT_FALSE(fs::exists(out / "coco/sigma/decoder"));  // no σ for non-PARSER rows
}

TEST_F(AnalysisFigures, ASeedThatRanTwiceIsPlottedOnceAsInTheTable) {
  auto figures_of = [&](const std::string& out) {
    std::vector<RunRecord> runs;
    for (const auto& dir : find_run_dirs({(root_ / "runs").string()})) runs.push_back(load_run(dir));
    write_figures(runs, derive_layout(runs), root_ / out);
    std::ostringstream text;
    for (const char* file : {"coco/loss.tex", "coco/miou.tex"}) text << std::ifstream(root_ / out / file).rdbuf();
    return text.str();
  };
  const std::string once = figures_of("once");
  // An older copy of decoder-seed=1, with other curves, sorts after it: the table leaves it out.
  fs::copy(root_ / "runs" / "decoder-seed=1", root_ / "runs" / "decoder-seed=1-old", fs::copy_options::recursive);
  std::ofstream(root_ / "runs" / "decoder-seed=1-old" / "metrics.jsonl")
      << json{{"type", "step"}, {"step", 10}, {"loss", 9.0}}.dump() << "\n"
      << json{{"type", "eval"}, {"epoch", 1}, {"metrics", {{"miou", 0.1}}}}.dump() << "\n";
  EXPECT_EQ(figures_of("twice"), once);
}

TEST_F(AnalysisFigures, ColumnGroupsOnOneDatasetGetADirectoryEach) {
  for (const char* experiment : {"ablation", "main"})
    write_run("decoder", {{"method.name", "decoder"}}, 1, false, experiment);
  std::vector<RunRecord> runs;
  for (const auto& dir : find_run_dirs({(root_ / "ablation").string(), (root_ / "main").string()}))
    runs.push_back(load_run(dir));
  TableLayout layout;
  for (const char* experiment : {"ablation", "main"})
    layout.columns.push_back({"coco", experiment, std::string("COCO, ") + experiment, {{"miou", "mIoU"}}});
  layout.rows.push_back({"Decoder", {{"method.name", "decoder"}}});
  const fs::path out = root_ / "figures";
  const auto files = write_figures(runs, layout, out);
  EXPECT_EQ(std::set<fs::path>(files.begin(), files.end()).size(), files.size());  // nothing written twice
  for (const char* dir : {"coco-ablation", "coco-main"})
    for (const char* file : {"loss.png", "miou.png"}) EXPECT_TRUE(fs::exists(out / dir / file)) << dir << "/" << file;
  EXPECT_FALSE(fs::exists(out / "coco"));
}

TEST_F(AnalysisFigures, RowsWhoseNamesSlugAlikeGetADirectoryEach) {
  for (int seed = 1; seed <= 2; ++seed)
    write_run("parser_both", {{"method.name", "parser"}, {"method.layers", "both"}}, seed, true);
  std::vector<RunRecord> runs;
  for (const auto& dir : find_run_dirs({(root_ / "runs").string()})) runs.push_back(load_run(dir));
  TableLayout layout;
  layout.columns.push_back({"coco", "", "COCO", {{"miou", "mIoU"}}});
  layout.rows.push_back({"PARSER (conv)", {{"method.name", "parser"}, {"method.layers", "conv"}}});
  layout.rows.push_back({"PARSER: conv", {{"method.name", "parser"}, {"method.layers", "both"}}});
  const fs::path out = root_ / "figures";
  const auto files = write_figures(runs, layout, out);
  EXPECT_EQ(std::set<fs::path>(files.begin(), files.end()).size(), files.size());  // nothing written twice
  EXPECT_TRUE(fs::exists(out / "coco/sigma/PARSER_conv/ratio_by_layer.png"));
  EXPECT_TRUE(fs::exists(out / "coco/sigma/PARSER_conv-2/ratio_by_layer.png"));
}

TEST_F(AnalysisFigures, PerClassScoresGetCurvesAndZeroSigmasNoRatio) {
  const fs::path dir = root_ / "organs" / "parser-seed=1";
  fs::create_directories(dir);
  std::ofstream(dir / "summary.json")
      << json{{"schema", 1}, {"run_id", "parser-seed=1"}, {"dataset", "abdomenct"}, {"seed", 1},
              {"status", "completed"}, {"group", {{"method.name", "parser"}}},
              {"final", {{"dsc", 0.8}, {"per_class_dsc", {{"liver", 0.9}}}}}}.dump();
  std::ofstream log(dir / "metrics.jsonl");
  for (int epoch = 1; epoch <= 2; ++epoch)
    log << json{{"type", "eval"}, {"epoch", epoch},
                {"metrics", {{"dsc", 0.7}, {"per_class_dsc", {{"liver", 0.8 + 0.05 * epoch}}}}}}.dump() << "\n";
  // σ that were 0 before fine-tuning have no ratio: the layer's mean is over the others, 2.
  log << json{{"type", "sigma"}, {"layer", "neck.0"}, {"pretrained", {2.0, 1.0, 0.0, 0.0}},
              {"learned", {4.0, 2.0, 0.0, 0.0}}}.dump() << "\n";
  log.close();
  TableLayout layout;
  layout.columns.push_back({"abdomenct", "", "CT", {{"per_class_dsc.liver", "liver DSC"}}});
  layout.rows.push_back({"PARSER", {{"method.name", "parser"}}});
  const fs::path out = root_ / "figures";
  write_figures({load_run(dir)}, layout, out);
  std::stringstream liver, ratio;
  liver << std::ifstream(out / "abdomenct/per_class_dsc.liver.tex").rdbuf();
  EXPECT_NE(liver.str().find("coordinates { (1,85) (2,90) };"), std::string::npos) << liver.str();
  ratio << std::ifstream(out / "abdomenct/sigma/PARSER/ratio_by_layer.tex").rdbuf();
  EXPECT_NE(ratio.str().find("coordinates { (0,2) };"), std::string::npos) << ratio.str();
}

TEST(AnalysisPlot, LegendTakesAFreeCornerElseGoesOutside) {
  const cv::Size panel(kPlotWidth, kPanelHeight);
  // A line rising to the upper right (the σ ratio by layer): the legend goes upper left.
  const Plot rising{"ratio", "layer", "ratio", {{"learned / pretrained", {0, 1}, {0.82, 0.91}}}};
  const PanelLayout beside_rising = layout_panel(rising, panel);
  EXPECT_FALSE(beside_rising.legend_outside);
  EXPECT_LT(beside_rising.legend.x, beside_rising.area.x + beside_rising.area.width / 2);
  EXPECT_LT(beside_rising.legend.y, beside_rising.area.y + beside_rising.area.height / 2);
  // A falling line leaves the upper right free.
  const Plot falling{"sigma", "index", "sigma", {{"pretrained", {0, 1, 2}, {3, 2, 1}}}};
  const PanelLayout beside_falling = layout_panel(falling, panel);
  EXPECT_GT(beside_falling.legend.x, beside_falling.area.x + beside_falling.area.width / 2);
  EXPECT_LT(beside_falling.legend.y, beside_falling.area.y + beside_falling.area.height / 2);
  // Both diagonals cross every corner: the plot narrows and the legend sits right of it.
  const Plot crossed{"x", "x", "y", {{"up", {0, 1}, {0, 1}}, {"down", {0, 1}, {1, 0}}}};
  const PanelLayout outside = layout_panel(crossed, panel);
  EXPECT_TRUE(outside.legend_outside);
  EXPECT_GE(outside.legend.x, outside.area.x + outside.area.width);
  EXPECT_LE(outside.legend.x + outside.legend.width, kPlotWidth);
  EXPECT_LT(outside.area.width, beside_rising.area.width);
}

TEST(AnalysisPlot, PgfplotsHoldsEverySeriesPoint) {
  const Plot plot{"Loss", "step", "loss", {{"a_b", {1, 2}, {0.5, 0.25}}}};
  const std::string tex = render_pgfplots({plot});
  EXPECT_NE(tex.find("coordinates { (1,0.5) (2,0.25) };"), std::string::npos);
  EXPECT_NE(tex.find("\\addlegendentry{a\\_b}"), std::string::npos);
}

TEST(AnalysisPlot, SeriesBeyondTheTenColoursAreDashed) {
  // Series 10 has series 0's colour: dashed, it covers fewer of that colour's pixels.
  const Series line{"line", {0, 1}, {0, 1}};
  Plot eleven{"t", "x", "y", std::vector<Series>(11, Series{"empty", {}, {}})};
  eleven.series[10] = line;
  const Plot one{"t", "x", "y", {line}};
  const auto palette_0_pixels = [](const Plot& plot) {
    cv::Mat mask;
    cv::inRange(draw_plots({plot}), cv::Scalar(180, 119, 31), cv::Scalar(180, 119, 31), mask);
    return cv::countNonZero(mask);
  };
  EXPECT_LT(palette_0_pixels(eleven), 0.9 * palette_0_pixels(one));  // 0.81 dashed, 1.0 solid
  const std::string tex = render_pgfplots({eleven});
  EXPECT_NE(tex.find("\\addplot[mark=none, thick, solid, color={rgb,255:red,31;green,119;blue,180}]"),
            std::string::npos) << tex;
  EXPECT_NE(tex.find("\\addplot[mark=none, thick, dashed, color={rgb,255:red,31;green,119;blue,180}]"),
            std::string::npos) << tex;
}

TEST(AnalysisPlot, FileSlugKeepsNamesReadable) {
  EXPECT_EQ(file_slug("SAM-PARSER (Ours)"), "SAM-PARSER_Ours");
  EXPECT_EQ(file_slug("image_encoder.blocks.0.attn.qkv"), "image_encoder.blocks.0.attn.qkv");
  EXPECT_EQ(file_slug("()"), "unnamed");
}

}  // namespace
}  // namespace sparser::analysis
