#include "line_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "table_writers.h"

namespace sparser::analysis {
namespace {

constexpr int kLeft = 90, kRight = 25, kTop = 45, kBottom = 65;
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kBlack(0, 0, 0), kGrid(225, 225, 225), kWhite(255, 255, 255);

// Tableau-10 colours (BGR), distinguishable in print and for most colour-blind readers.
const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44},  {40, 39, 214},  {189, 103, 148},
                               {75, 86, 140},  {194, 119, 227}, {127, 127, 127}, {34, 189, 188}, {207, 190, 23}};

// Series i: colour i mod 10; each further ten rows a dash pattern (pixels on, off, ...),
// so that no two of up to 40 rows look alike.
struct LineStyle {
  cv::Scalar colour;
  std::vector<double> dashes;  // empty: solid
  const char* pgfplots;        // the same pattern's pgfplots name
};

LineStyle line_style(size_t series) {
  static const std::vector<std::pair<std::vector<double>, const char*>> patterns = {
      {{}, "solid"}, {{10, 6}, "dashed"}, {{2, 5}, "dotted"}, {{10, 4, 2, 4}, "dashdotted"}};
  const auto& [dashes, name] = patterns[(series / 10) % patterns.size()];
  return {kPalette[series % 10], dashes, name};
}

struct Range {
  double low = 0.0, high = 1.0;
};

Range data_range(const Plot& plot, bool use_x) {
  double low = INFINITY, high = -INFINITY;
  for (const auto& series : plot.series)
    for (double v : use_x ? series.x : series.y)
      if (std::isfinite(v)) {
        low = std::min(low, v);
        high = std::max(high, v);
      }
  if (!std::isfinite(low)) return {};
  if (high - low < 1e-12) {  // a flat line still needs an axis with some extent
    const double pad = std::abs(low) > 1e-12 ? std::abs(low) * 0.05 : 0.5;
    return {low - pad, high + pad};
  }
  const double pad = use_x ? 0.0 : (high - low) * 0.05;
  return {low - pad, high + pad};
}

double nice_step(double span) {
  const double raw = span / 5.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 5.0})
    if (raw <= factor * magnitude) return factor * magnitude;
  return 10.0 * magnitude;
}

std::string tick_text(double value, double step) {
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, std::abs(value) < step * 1e-6 ? 0.0 : value);
  return buffer;
}

void put_text(cv::Mat& image, const std::string& text, cv::Point origin, double scale = 0.5, int thickness = 1) {
  cv::putText(image, text, origin, kFont, scale, kBlack, thickness, cv::LINE_AA);
}

void put_centered(cv::Mat& image, const std::string& text, cv::Point center, double scale = 0.5, int thickness = 1) {
  int baseline = 0;
  cv::Size size = cv::getTextSize(text, kFont, scale, thickness, &baseline);
  if (size.width > image.cols - 20) {  // long layer or row names: shrink rather than clip
    scale *= static_cast<double>(image.cols - 20) / size.width;
    size = cv::getTextSize(text, kFont, scale, thickness, &baseline);
  }
  put_text(image, text, {center.x - size.width / 2, center.y + size.height / 2}, scale, thickness);
}

// OpenCV has no rotated text: draw on a strip, rotate it, paste it.
void put_vertical(cv::Mat& image, const std::string& text, cv::Point center) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, kFont, 0.5, 1, &baseline);
  cv::Mat strip(size.height + baseline + 4, size.width + 4, image.type(), kWhite);
  put_text(strip, text, {2, size.height + 2});
  cv::rotate(strip, strip, cv::ROTATE_90_COUNTERCLOCKWISE);
  const cv::Rect target(center.x - strip.cols / 2, center.y - strip.rows / 2, strip.cols, strip.rows);
  const cv::Rect clipped = target & cv::Rect(0, 0, image.cols, image.rows);
  strip(cv::Rect(clipped.x - target.x, clipped.y - target.y, clipped.width, clipped.height)).copyTo(image(clipped));
}

// Data coordinates → pixels of a panel.
struct Axes {
  cv::Rect area;
  Range x, y;
  cv::Point to_pixel(double x_value, double y_value) const {
    return {area.x + static_cast<int>(std::lround((x_value - x.low) / (x.high - x.low) * area.width)),
            area.y + area.height - static_cast<int>(std::lround((y_value - y.low) / (y.high - y.low) * area.height))};
  }
};

// The finite points of each series, in pixels.
std::vector<std::vector<cv::Point>> series_pixels(const Plot& plot, const Axes& axes) {
  std::vector<std::vector<cv::Point>> lines;
  for (const auto& series : plot.series) {
    std::vector<cv::Point> points;
    for (size_t k = 0; k < std::min(series.x.size(), series.y.size()); ++k)
      if (std::isfinite(series.x[k]) && std::isfinite(series.y[k])) points.push_back(axes.to_pixel(series.x[k], series.y[k]));
    lines.push_back(std::move(points));
  }
  return lines;
}

// The pattern runs on across the corners of the polyline, as a dashed pen would.
void draw_dashed(cv::Mat& image, const std::vector<cv::Point>& points, const LineStyle& style) {
  size_t dash = 0;
  double left = style.dashes[0];  // of the current dash or gap
  for (size_t k = 1; k < points.size(); ++k) {
    const cv::Point2d from = points[k - 1], to = points[k];
    const double length = cv::norm(to - from);
    for (double at = 0.0; at < length;) {  // none for a zero-length segment, whose direction is undefined
      const cv::Point2d direction = (to - from) / length;
      const double step = std::min(left, length - at);
      if (dash % 2 == 0)
        cv::line(image, from + direction * at, from + direction * (at + step), style.colour, 2, cv::LINE_AA);
      at += step;
      left -= step;
      if (left <= 0.0) {
        dash = (dash + 1) % style.dashes.size();
        left = style.dashes[dash];
      }
    }
  }
}

void draw_series(cv::Mat& image, const std::vector<cv::Point>& points, const LineStyle& style) {
  if (points.size() == 1) cv::circle(image, points[0], 3, style.colour, cv::FILLED, cv::LINE_AA);
  else if (style.dashes.empty()) cv::polylines(image, points, false, style.colour, 2, cv::LINE_AA);
  else draw_dashed(image, points, style);
}

constexpr int kLegendLine = 20, kLegendMargin = 8;

cv::Size legend_size(const Plot& plot) {
  int width = 0;
  for (const auto& series : plot.series) {
    int baseline = 0;
    width = std::max(width, cv::getTextSize(series.label, kFont, 0.45, 1, &baseline).width);
  }
  return {width + 42, kLegendLine * static_cast<int>(plot.series.size()) + 8};
}

void draw_legend(cv::Mat& image, const Plot& plot, const cv::Rect& box) {
  cv::rectangle(image, box, kWhite, cv::FILLED);
  cv::rectangle(image, box, kBlack, 1);
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const int y = box.y + 14 + kLegendLine * static_cast<int>(i);
    draw_series(image, {{box.x + 6, y}, {box.x + 28, y}}, line_style(i));
    cv::putText(image, plot.series[i].label, {box.x + 34, y + 5}, kFont, 0.45, kBlack, 1, cv::LINE_AA);
  }
}

Axes make_axes(const Plot& plot, const cv::Rect& area) { return {area, data_range(plot, true), data_range(plot, false)}; }

bool is_integral(const Plot& plot) {
  for (const auto& series : plot.series)
    for (double x : series.x)
      if (std::isfinite(x) && x != std::round(x)) return false;
  return true;
}

void draw_panel(cv::Mat& image, const Plot& plot) {
  const PanelLayout layout = layout_panel(plot, image.size());
  const Axes axes = make_axes(plot, layout.area);
  const cv::Rect& area = axes.area;

  // Steps, epochs and layer indices are whole numbers: no ticks between them.
  const double x_step = std::max(nice_step(axes.x.high - axes.x.low), is_integral(plot) ? 1.0 : 0.0);
  const double y_step = nice_step(axes.y.high - axes.y.low);
  for (double x = std::ceil(axes.x.low / x_step - 1e-9) * x_step; x <= axes.x.high + x_step * 1e-9; x += x_step) {
    const int px = axes.to_pixel(x, axes.y.low).x;
    cv::line(image, {px, area.y}, {px, area.y + area.height}, kGrid, 1);
    cv::line(image, {px, area.y + area.height}, {px, area.y + area.height + 5}, kBlack, 1);
    put_centered(image, tick_text(x, x_step), {px, area.y + area.height + 18}, 0.45);
  }
  for (double y = std::ceil(axes.y.low / y_step - 1e-9) * y_step; y <= axes.y.high + y_step * 1e-9; y += y_step) {
    const int py = axes.to_pixel(axes.x.low, y).y;
    cv::line(image, {area.x, py}, {area.x + area.width, py}, kGrid, 1);
    cv::line(image, {area.x - 5, py}, {area.x, py}, kBlack, 1);
    const std::string label = tick_text(y, y_step);
    int baseline = 0;
    const int width = cv::getTextSize(label, kFont, 0.45, 1, &baseline).width;
    cv::putText(image, label, {area.x - 9 - width, py + 5}, kFont, 0.45, kBlack, 1, cv::LINE_AA);
  }
  cv::rectangle(image, area, kBlack, 1);

  const auto lines = series_pixels(plot, axes);
  for (size_t i = 0; i < lines.size(); ++i) draw_series(image, lines[i], line_style(i));

  put_centered(image, plot.title, {image.cols / 2, kTop / 2}, 0.6, 1);
  put_centered(image, plot.x_label, {area.x + area.width / 2, image.rows - 20});
  put_vertical(image, plot.y_label, {22, area.y + area.height / 2});
  if (!plot.series.empty()) draw_legend(image, plot, layout.legend);
}

std::string pgf_text(const std::string& text) { return "{" + escape_latex(text) + "}"; }

}  // namespace

PanelLayout layout_panel(const Plot& plot, cv::Size panel) {
  const cv::Rect full(kLeft, kTop, panel.width - kLeft - kRight, panel.height - kTop - kBottom);
  PanelLayout layout{full, {}, false};
  if (plot.series.empty()) return layout;
  const cv::Size box = legend_size(plot);

  // The pixels the lines cover, with the legend's own margin around them.
  cv::Mat covered(panel, CV_8U, cv::Scalar(0));
  for (const auto& points : series_pixels(plot, make_axes(plot, full))) draw_series(covered, points, {{255}, {}, ""});
  cv::dilate(covered, covered, cv::getStructuringElement(cv::MORPH_RECT, {2 * kLegendMargin + 1, 2 * kLegendMargin + 1}));

  const int left = full.x + kLegendMargin, right = full.x + full.width - box.width - kLegendMargin;
  const int top = full.y + kLegendMargin, bottom = full.y + full.height - box.height - kLegendMargin;
  for (const cv::Point corner : {cv::Point(right, top), cv::Point(left, top), cv::Point(right, bottom), cv::Point(left, bottom)}) {
    const cv::Rect candidate = cv::Rect(corner, box) & cv::Rect({0, 0}, panel);
    if (candidate.area() == box.area() && cv::countNonZero(covered(candidate)) == 0) {
      layout.legend = candidate;
      return layout;
    }
  }
  // Every corner has a line under it: narrow the plot and put the legend beside it.
  layout.area.width = std::max(1, full.width - box.width - kLegendMargin);
  layout.legend = {layout.area.x + layout.area.width + kLegendMargin, full.y, box.width, box.height};
  layout.legend_outside = true;
  return layout;
}

cv::Mat draw_plots(const std::vector<Plot>& panels) {
  cv::Mat image(kPanelHeight * static_cast<int>(panels.size()), kPlotWidth, CV_8UC3, kWhite);
  for (size_t i = 0; i < panels.size(); ++i) {
    cv::Mat panel = image(cv::Rect(0, kPanelHeight * static_cast<int>(i), kPlotWidth, kPanelHeight));
    draw_panel(panel, panels[i]);
  }
  return image;
}

std::string render_pgfplots(const std::vector<Plot>& panels) {
  std::ostringstream out;
  out.precision(8);
  out << "% Generated by sparser_analyze; needs \\usepackage{pgfplots}.\n";
  for (const auto& plot : panels) {
    out << "\\begin{tikzpicture}\n  \\begin{axis}[width=0.9\\linewidth, height=0.55\\linewidth, grid=major,\n"
        << "    title=" << pgf_text(plot.title) << ", xlabel=" << pgf_text(plot.x_label)
        << ", ylabel=" << pgf_text(plot.y_label) << ",\n    legend pos=outer north east, legend cell align=left]\n";
    for (size_t i = 0; i < plot.series.size(); ++i) {
      const Series& series = plot.series[i];
      const LineStyle style = line_style(i);
      out << "    \\addplot[mark=none, thick, " << style.pgfplots << ", color={rgb,255:red," << style.colour[2]
          << ";green," << style.colour[1] << ";blue," << style.colour[0] << "}] coordinates {";
      for (size_t k = 0; k < std::min(series.x.size(), series.y.size()); ++k)
        if (std::isfinite(series.y[k])) out << " (" << series.x[k] << "," << series.y[k] << ")";
      out << " };\n    \\addlegendentry" << pgf_text(series.label) << "\n";
    }
    out << "  \\end{axis}\n\\end{tikzpicture}\n";
  }
  return out.str();
}

std::vector<std::filesystem::path> write_figure(const std::filesystem::path& stem, const std::vector<Plot>& panels) {
  std::filesystem::create_directories(stem.parent_path());
  const auto png = std::filesystem::path(stem.string() + ".png");
  const auto tex = std::filesystem::path(stem.string() + ".tex");
  if (!cv::imwrite(png.string(), draw_plots(panels))) throw std::runtime_error("cannot write " + png.string());
  std::ofstream out(tex);
  out << render_pgfplots(panels);
  out.close();
  if (!out) throw std::runtime_error("cannot write " + tex.string());
  return {png, tex};
}

}  // namespace sparser::analysis
