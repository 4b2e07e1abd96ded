// sparser_analyze: run directories → paper tables (LaTeX, Markdown, CSV) and figures.
#include <fstream>
#include <iostream>
#include <stdexcept>

#include <boost/program_options.hpp>

#include "figures.h"
#include "results_table.h"
#include "run_discovery.h"
#include "table_writers.h"

namespace po = boost::program_options;
using namespace sparser::analysis;

namespace {

constexpr const char* kUsage = R"(Usage:
  sparser_analyze table RUN_GLOB... [options]
  sparser_analyze figures RUN_GLOB... --out DIR [--layout FILE]

RUN_GLOB is a run directory (holding summary.json), a directory of run
directories, or a shell pattern of either (quote it so the tool expands it).
Runs are grouped by everything but the seed: rows by the swept keys, columns by
dataset and experiment (run.name), never averaging two configurations. Cells
show mean ± sample std over seeds, in percent for metrics (a layout may add
summary.json numbers such as trainable parameters or images/s). Markers:
† missing seeds (against the layout's seeds, the runs' configs and the other
cells of their experiment), ‡ runs left out (failed, running, duplicate seed),
§ single seed, ¶ another batch than the layout's global_batch; each is explained
under the table.

Examples (sparser_run writes runs to <run.output_dir>/<run.name>/<run id>/):
  sparser_analyze table runs/abdomenct runs/coco runs/voc runs/nwpu runs/whu \
      --layout experiments/table3_layout.toml --out paper/table3.tex
  sparser_analyze table runs/efficiency --layout experiments/table4_layout.toml
  sparser_analyze table 'runs/coco/lora-*' 'runs/coco/parser-*' --format markdown
  sparser_analyze figures runs/coco --layout experiments/table3_layout.toml --out paper/figures

See docs/analysis.md for the layout file.

Options)";

std::vector<RunRecord> load_runs(const std::vector<std::string>& globs) {
  std::vector<RunRecord> runs;
  for (const auto& dir : find_run_dirs(globs)) runs.push_back(load_run(dir));
  return runs;
}

std::string format_from(const po::variables_map& args) {
  if (args.count("format")) return args["format"].as<std::string>();
  if (args.count("out")) {
    const auto extension = std::filesystem::path(args["out"].as<std::string>()).extension();
    if (extension == ".md") return "markdown";
    if (extension == ".csv") return "csv";
  }
  return "latex";
}

void write_output(const po::variables_map& args, const std::string& text) {
  if (!args.count("out")) {
    std::cout << text;
    return;
  }
  const std::filesystem::path path = args["out"].as<std::string>();
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path);
  out << text;
  out.close();  // the text may still sit in the stream's buffer: a full disk shows at the close
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

int run_table(const po::variables_map& args, const std::vector<RunRecord>& runs) {
  TableLayout layout = args.count("layout") ? load_layout(args["layout"].as<std::string>()) : derive_layout(runs);
  if (args.count("baseline")) layout.baseline = args["baseline"].as<std::string>();
  if (args.count("caption")) layout.caption = args["caption"].as<std::string>();
  if (args.count("decimals")) layout.decimals = args["decimals"].as<int>();
  if (layout.decimals < 0 || layout.decimals > 6) throw po::error("--decimals must be in 0..6");
  const ResultsTable table = build_results_table(runs, layout);

  const std::string format = format_from(args);
  // Markdown is read as text more often than rendered with math, so it defaults to "84.2 ± 0.2".
  const std::string pm = args.count("pm") ? args["pm"].as<std::string>() : (format == "markdown" ? "unicode" : "latex");
  if (pm != "latex" && pm != "unicode") throw po::error("--pm must be latex or unicode");
  const PlusMinusStyle style = pm == "latex" ? PlusMinusStyle::kLatex : PlusMinusStyle::kUnicode;

  if (format == "latex") write_output(args, render_latex(table, {style, args.count("standalone") > 0}));
  else if (format == "markdown") write_output(args, render_markdown(table, style));
  else if (format == "csv") write_output(args, render_csv(table));
  else throw po::error("--format must be latex, markdown or csv");
  return 0;
}

int run_figures(const po::variables_map& args, const std::vector<RunRecord>& runs) {
  if (!args.count("out")) throw po::error("figures needs --out DIR");
  const TableLayout layout = args.count("layout") ? load_layout(args["layout"].as<std::string>()) : derive_layout(runs);
  const auto files = write_figures(runs, layout, args["out"].as<std::string>());
  for (const auto& file : files) std::cout << file.string() << "\n";
  if (files.empty()) std::cerr << "sparser_analyze: no completed run has curves to plot\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options(kUsage);
  options.add_options()
      ("help,h", "show this help")
      ("layout", po::value<std::string>(), "TOML layout: rows, column groups (metrics, summary.json numbers), caption, baseline, seeds")
      ("format", po::value<std::string>(), "latex | markdown | csv (default: from --out's extension, else latex)")
      ("pm", po::value<std::string>(), "latex ($84.2_{\\pm0.2}$) | unicode (84.2 ± 0.2); default latex, unicode for markdown")
      ("baseline", po::value<std::string>(), "row name to show deltas against, e.g. \"Adapter\" (overrides the layout)")
      ("caption", po::value<std::string>(), "table caption, LaTeX allowed (overrides the layout)")
      ("decimals", po::value<int>(), "digits after the point (default 1; a layout metric may set its own)")
      ("standalone", "LaTeX: wrap the table in a compilable document")
      ("out,o", po::value<std::string>(), "table: output file (default stdout); figures: output directory");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>())("runs", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1).add("runs", -1);

  try {
    po::variables_map args;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), args);
    po::notify(args);
    if (args.count("help") || !args.count("command")) {
      std::cout << options << "\n";
      return args.count("help") ? 0 : 2;
    }
    const std::string command = args["command"].as<std::string>();
    if (command != "table" && command != "figures") throw po::error("unknown command '" + command + "'");
    if (!args.count("runs")) throw po::error(command + " needs at least one RUN_GLOB");
    const auto runs = load_runs(args["runs"].as<std::vector<std::string>>());
    return command == "table" ? run_table(args, runs) : run_figures(args, runs);
  } catch (const po::error& e) {
    std::cerr << "sparser_analyze: " << e.what() << "\n(see sparser_analyze --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sparser_analyze: " << e.what() << "\n";
    return 1;
  }
}
