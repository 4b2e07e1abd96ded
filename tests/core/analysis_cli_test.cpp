// sparser_analyze as a user runs it, and the emitted LaTeX through pdflatex
// (skipped when pdflatex is not on PATH; CI installs it).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kAnalyze = fs::path(SPARSER_BIN_DIR) / "sparser_analyze";

class AnalysisCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kAnalyze)) GTEST_SKIP() << kAnalyze << " is not built";
    root_ = fs::temp_directory_path() / ("sparser_analysis_cli_" + std::to_string(std::random_device{}()));
    const std::vector<std::pair<std::string, json>> groups = {
        {"adapter", {{"method.name", "adapter"}}},
        {"parser", {{"method.name", "parser"}, {"method.layers", "conv_attn"}}}};
    for (const auto& [name, group] : groups)
      for (int seed = 1; seed <= 2; ++seed) {
        const std::string run_id = name + "-seed=" + std::to_string(seed);
        const bool failed = name == "adapter" && seed == 2;
        fs::create_directories(root_ / "runs" / run_id);
        json summary = {{"schema", 1}, {"run_id", run_id}, {"dataset", "coco"}, {"seed", seed},
                        {"status", failed ? "failed" : "completed"}, {"error", failed ? "NaN loss" : ""},
                        {"group", group}};
        if (!failed) summary["final"] = {{"miou", 0.8 + 0.01 * seed}, {"f1", 0.9}};
        std::ofstream(root_ / "runs" / run_id / "summary.json") << summary.dump();
      }
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }

  int analyze(const std::string& arguments) const {
    const std::string command = "cd '" + root_.string() + "' && '" + kAnalyze.string() + "' " + arguments +
                                " > out.txt 2> err.txt";
    return WEXITSTATUS(std::system(command.c_str()));
  }
  std::string read(const std::string& name) const {
    std::ifstream in(root_ / name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path root_;
};

TEST_F(AnalysisCli, HelpExamplesNameFilesThatExist) {
  EXPECT_EQ(analyze("--help"), 0);
  const std::string help = read("out.txt");
  EXPECT_NE(help.find("sparser_analyze table runs/abdomenct runs/coco"), std::string::npos) << help;
  // Every experiments/*.toml the examples name is in the repository.
  const std::regex layout_path("experiments/[A-Za-z0-9_]+\\.toml");
  size_t named = 0;
  for (auto it = std::sregex_iterator(help.begin(), help.end(), layout_path); it != std::sregex_iterator(); ++it, ++named)
    EXPECT_TRUE(fs::exists(fs::path(SPARSER_SOURCE_DIR) / it->str())) << it->str();
  EXPECT_GE(named, 2u);
}

TEST_F(AnalysisCli, TableFromAGlobWritesTheFormatOfTheOutputExtension) {
  ASSERT_EQ(analyze("table 'runs/*-seed=*' --baseline adapter --out tables/main.csv"), 0) << read("err.txt");
  const std::string csv = read("tables/main.csv");
  EXPECT_EQ(csv.rfind("row,dataset,metric,mean,std,seeds,best,delta,notes\n", 0), 0u);
  EXPECT_NE(csv.find("adapter,coco,mIoU,81.0,,1,0,,\"missing seed 2 (1 of 2 seeds); excluded adapter-seed=2 "
                     "(failed: NaN loss); single seed, no standard deviation\""),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("parser (layers=conv_attn),coco,mIoU,81.5,0.7,2,1,+0.5,"), std::string::npos) << csv;
}

TEST_F(AnalysisCli, UsageErrorsExitWithTwoAndMissingRunsWithOne) {
  EXPECT_EQ(analyze("table runs --format html"), 2);
  EXPECT_EQ(analyze("plot runs"), 2);
  EXPECT_EQ(analyze("table 'runs/typo*'"), 1);
  EXPECT_NE(read("err.txt").find("matches no run directory"), std::string::npos);
}

TEST_F(AnalysisCli, AnExistingPathWithGlobCharactersIsTakenAsNamed) {
  fs::copy(root_ / "runs", root_ / "runs [v2]*", fs::copy_options::recursive);
  EXPECT_EQ(analyze("table 'runs [v2]*/parser-seed=1'"), 0) << read("err.txt");
  EXPECT_EQ(analyze("table 'runs [v2]*'"), 0) << read("err.txt");
}

TEST_F(AnalysisCli, StandaloneLatexCompilesWithPdflatex) {
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0) GTEST_SKIP() << "pdflatex is not on PATH";
  ASSERT_EQ(analyze("table runs --baseline adapter --standalone --caption 'Main results.' --out table.tex"), 0)
      << read("err.txt");
  const int rc = std::system(("cd '" + root_.string() +
                              "' && pdflatex -interaction=nonstopmode -halt-on-error table.tex > pdflatex.log 2>&1")
                                 .c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0) << read("pdflatex.log");
  EXPECT_TRUE(fs::exists(root_ / "table.pdf"));
}

TEST_F(AnalysisCli, RowNamesAndNotesOfAnyTextCompileWithPdflatex) {
  if (std::system("command -v pdflatex > /dev/null 2>&1") != 0) GTEST_SKIP() << "pdflatex is not on PATH";
  // sparser_run's own errors hold non-ASCII text ("PyTorch ≥ 1.6"), paths may not be UTF-8,
  // and after \\ a row name's leading '[' would be read as an optional argument, a '*' as \\*.
  json summary;
  std::ifstream(root_ / "runs/adapter-seed=2/summary.json") >> summary;
  summary["error"] = "legacy checkpoint: re-save it with PyTorch \u2265 1.6 \u2014 in /data/Z\u00fcrich/\u6f22";
  std::ofstream(root_ / "runs/adapter-seed=2/summary.json") << summary.dump() << "\n";
  std::ofstream(root_ / "layout.toml") << R"toml(
[[columns]]
dataset = "coco"
metrics = ["miou"]
[[rows]]
name = "Adapter"
match = { "method.name" = "adapter" }
[[rows]]
name = "[Ours] SAM-PARSER"
match = { "method.name" = "parser" }
[[rows]]
name = "*Adapter again"
match = { "method.name" = "adapter" }
)toml";
  ASSERT_EQ(analyze("table runs --layout layout.toml --standalone --out table.tex"), 0) << read("err.txt");
  const std::string latex = read("table.tex");
  EXPECT_NE(latex.find("PyTorch $\\geq$ 1.6 --- in /data/Z\u00fcrich/?"), std::string::npos) << latex;
  EXPECT_NE(latex.find("    {}*Adapter again &"), std::string::npos) << latex;  // \\* would eat the star
  const int rc = std::system(("cd '" + root_.string() +
                              "' && pdflatex -interaction=nonstopmode -halt-on-error table.tex > pdflatex.log 2>&1")
                                 .c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0) << read("pdflatex.log");
}

TEST_F(AnalysisCli, AnOutputThatCannotBeWrittenIsAnError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  fs::create_symlink("/dev/full", root_ / "full.tex");  // a full disk: the text fits the stream's buffer
  EXPECT_EQ(analyze("table runs --out full.tex"), 1);
  EXPECT_NE(read("err.txt").find("cannot write full.tex"), std::string::npos) << read("err.txt");
}

}  // namespace
