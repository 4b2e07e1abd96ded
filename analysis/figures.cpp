#include "figures.h"

#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "line_plot.h"

namespace sparser::analysis {
namespace {

namespace fs = std::filesystem;

struct RowRuns {
  std::string name;
  std::vector<const RunRecord*> runs;  // the completed run of each seed of this row in one column group
};

// Each row's runs as the table averages them, so a figure never counts a run its table leaves out.
std::vector<RowRuns> rows_on(const std::vector<RunRecord>& runs, const TableLayout& layout, const ColumnGroup& column) {
  std::vector<RowRuns> rows;
  for (const auto& row : layout.rows) {
    RowRuns entry{row.name, {}};
    for (const auto& [seed, run] : select_cell_runs(runs, row, column).completed_by_seed) entry.runs.push_back(run);
    if (!entry.runs.empty()) rows.push_back(std::move(entry));
  }
  return rows;
}

// Mean over runs at each x; a run that did not log some x simply does not count there.
Series mean_series(const std::string& label, const std::map<double, std::pair<double, int>>& sums) {
  Series series{label, {}, {}};
  for (const auto& [x, sum_count] : sums) {
    series.x.push_back(x);
    series.y.push_back(sum_count.first / sum_count.second);
  }
  return series;
}

Plot loss_plot(const std::vector<RowRuns>& rows, const std::string& dataset) {
  Plot plot{"Training loss, " + dataset, "step", "loss", {}};
  for (const auto& row : rows) {
    std::map<double, std::pair<double, int>> sums;
    for (const auto* run : row.runs)
      for (const auto& point : run->losses) {
        auto& [sum, count] = sums[static_cast<double>(point.step)];
        sum += point.loss;
        ++count;
      }
    if (!sums.empty()) plot.series.push_back(mean_series(row.name, sums));
  }
  return plot;
}

Plot metric_plot(const std::vector<RowRuns>& rows, const std::string& dataset, const MetricSpec& metric) {
  Plot plot{metric.name + " on " + dataset, "epoch", metric.name + " (%)", {}};
  for (const auto& row : rows) {
    std::map<double, std::pair<double, int>> sums;
    for (const auto* run : row.runs)
      for (const auto& eval : run->evals)
        if (auto found = eval.metrics.find(metric.key); found != eval.metrics.end()) {
          auto& [sum, count] = sums[eval.epoch];
          sum += found->second * 100.0;
          ++count;
        }
    if (!sums.empty()) plot.series.push_back(mean_series(row.name, sums));
  }
  return plot;
}

std::vector<double> indices(size_t count) {
  std::vector<double> x(count);
  for (size_t i = 0; i < count; ++i) x[i] = static_cast<double>(i);
  return x;
}

// Per layer, the learned σ averaged over seeds (the pretrained σ is the same for all).
struct LayerSigma {
  std::vector<double> pretrained, learned;
  int runs = 0;
};

std::vector<fs::path> write_sigma_figures(const RowRuns& row, const fs::path& dir) {
  std::map<std::string, LayerSigma> layers;
  std::vector<std::string> order;  // the trainer's layer order, which follows the model
  for (const auto* run : row.runs)
    for (const auto& sigma : run->sigmas) {
      auto [it, inserted] = layers.try_emplace(sigma.layer);
      if (inserted) {
        order.push_back(sigma.layer);
        it->second.pretrained = sigma.pretrained;
        it->second.learned.assign(sigma.learned.size(), 0.0);
      }
      if (sigma.learned.size() != it->second.learned.size()) continue;
      for (size_t i = 0; i < sigma.learned.size(); ++i) it->second.learned[i] += sigma.learned[i];
      ++it->second.runs;
    }
  std::vector<fs::path> written;
  if (layers.empty()) return written;

  Series mean_ratio{"learned / pretrained", {}, {}};
  for (size_t l = 0; l < order.size(); ++l) {
    LayerSigma& layer = layers[order[l]];
    for (double& value : layer.learned) value /= layer.runs;
    const size_t count = std::min(layer.pretrained.size(), layer.learned.size());
    std::vector<double> ratio(count);
    double ratio_sum = 0.0;
    size_t finite = 0;  // a pretrained σ of 0 has no ratio
    for (size_t i = 0; i < count; ++i) {
      ratio[i] = layer.pretrained[i] != 0.0 ? layer.learned[i] / layer.pretrained[i] : NAN;
      if (std::isfinite(ratio[i])) {
        ratio_sum += ratio[i];
        ++finite;
      }
    }
    mean_ratio.x.push_back(static_cast<double>(l));
    mean_ratio.y.push_back(finite ? ratio_sum / static_cast<double>(finite) : NAN);
    const std::vector<double> x = indices(count);
    std::vector<Plot> panels = {
        {"Singular values, " + order[l] + " (" + row.name + ")", "index", "sigma",
         {{"pretrained", x, {layer.pretrained.begin(), layer.pretrained.begin() + count}},
          {"learned", x, {layer.learned.begin(), layer.learned.begin() + count}}}},
        {"Reconstruction ratio, " + order[l], "index", "learned / pretrained", {{"ratio", x, ratio}}}};
    for (auto& file : write_figure(dir / file_slug(order[l]), panels)) written.push_back(file);
  }
  const Plot summary{"Mean sigma ratio per layer (" + row.name + ")", "layer index", "mean learned / pretrained",
                     {mean_ratio}};
  for (auto& file : write_figure(dir / "ratio_by_layer", {summary})) written.push_back(file);
  return written;
}

// The names with a number added to each one that repeats an earlier one ("a", "a-2"), so
// no directory's figures overwrite another's.
std::vector<std::string> distinct(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  std::set<std::string> taken;
  for (const auto& name : names) {
    std::string unique = name;
    for (int repeat = 2; !taken.insert(unique).second; ++repeat) unique = name + "-" + std::to_string(repeat);
    out.push_back(unique);
  }
  return out;
}

// A directory per column group: its dataset's name, with the group's experiment (or,
// without one, its name) where several groups share the dataset.
std::vector<std::string> figure_directories(const std::vector<ColumnGroup>& groups) {
  std::map<std::string, int> groups_on_dataset;
  for (const auto& group : groups) ++groups_on_dataset[group.dataset];
  std::vector<std::string> names;
  for (const auto& group : groups) {
    std::string name = file_slug(group.dataset);
    if (groups_on_dataset[group.dataset] > 1)
      name += "-" + file_slug(group.experiment.empty() ? group.name : group.experiment);
    names.push_back(name);
  }
  return distinct(names);
}

}  // namespace

std::string file_slug(const std::string& name) {
  std::string slug;
  for (char c : name) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '=';
    if (keep) slug += c;
    else if (!slug.empty() && slug.back() != '_') slug += '_';
  }
  while (!slug.empty() && slug.back() == '_') slug.pop_back();
  return slug.empty() ? "unnamed" : slug;
}

std::vector<fs::path> write_figures(const std::vector<RunRecord>& runs, const TableLayout& layout,
                                    const fs::path& out_dir) {
  std::vector<fs::path> written;
  auto keep = [&written](std::vector<fs::path> files) { written.insert(written.end(), files.begin(), files.end()); };
  const auto directories = figure_directories(layout.columns);
  for (size_t g = 0; g < layout.columns.size(); ++g) {
    const ColumnGroup& group = layout.columns[g];
    const auto rows = rows_on(runs, layout, group);
    if (rows.empty()) continue;
    const fs::path dir = out_dir / directories[g];
    if (Plot plot = loss_plot(rows, group.name); !plot.series.empty()) keep(write_figure(dir / "loss", {plot}));
    for (const auto& metric : group.metrics) {
      if (metric.source != MetricSource::kFinal) continue;  // summary numbers (parameters, speed) have no curve
      if (Plot plot = metric_plot(rows, group.name, metric); !plot.series.empty())
        keep(write_figure(dir / file_slug(metric.key), {plot}));
    }
    std::vector<std::string> row_slugs;
    for (const auto& row : rows) row_slugs.push_back(file_slug(row.name));
    row_slugs = distinct(row_slugs);  // "PARSER (conv)" and "PARSER: conv" slug alike
    for (size_t r = 0; r < rows.size(); ++r) keep(write_sigma_figures(rows[r], dir / "sigma" / row_slugs[r]));
  }
  return written;
}

}  // namespace sparser::analysis
