// Minimal line plots for the analysis figures: axes with 1-2-5 ticks, grid,
// axis labels, title and a legend that keeps off the lines, drawn with OpenCV into a PNG, and the same
// data as a pgfplots picture for the paper.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace sparser::analysis {

struct Series {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
};

struct Plot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
};

constexpr int kPlotWidth = 800;
constexpr int kPanelHeight = 480;

// Where a panel's plot area and legend go. The legend takes the first corner of the
// area (upper right, upper left, lower right, lower left) that no line comes near;
// when every corner has a line, the area narrows and the legend sits right of it.
struct PanelLayout {
  cv::Rect area;
  cv::Rect legend;  // empty without series
  bool legend_outside = false;
};
PanelLayout layout_panel(const Plot& plot, cv::Size panel);

// Panels are stacked top to bottom; the image is kPlotWidth x (kPanelHeight * panels).
cv::Mat draw_plots(const std::vector<Plot>& panels);

// One tikzpicture per panel (stacked), for \input into a document that loads pgfplots.
std::string render_pgfplots(const std::vector<Plot>& panels);

// Writes <stem>.png and <stem>.tex; returns both paths. Throws std::runtime_error naming
// the file when either cannot be written.
std::vector<std::filesystem::path> write_figure(const std::filesystem::path& stem, const std::vector<Plot>& panels);

}  // namespace sparser::analysis
