#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "emb/error.h"

namespace emb_cli {

namespace {

constexpr std::int64_t kCurvePoints = 200;
constexpr auto kRedraw = std::chrono::milliseconds(250);

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

Progress::Style Progress::detect(bool quiet) {
  if (quiet) return Style::kQuiet;
  return ::isatty(STDERR_FILENO) ? Style::kBar : Style::kLines;
}

Progress::Progress(Style style, std::int64_t epochs, std::int64_t examples_per_epoch)
    : style_(style),
      epochs_(epochs),
      per_epoch_(examples_per_epoch),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(std::int64_t done, double epoch_loss, double lr) {
  const std::int64_t total = epochs_ * per_epoch_;
  point_loss_sum_ += epoch_loss;
  ++point_steps_;
  if (done * kCurvePoints >= next_point_ * total) {
    curve_.emplace_back(static_cast<double>(done) / static_cast<double>(per_epoch_),
                        point_loss_sum_ / static_cast<double>(point_steps_));
    point_loss_sum_ = 0;
    point_steps_ = 0;
    next_point_ = done * kCurvePoints / total + 1;
  }
  last_done_ = done;
  if (style_ != Style::kBar) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedraw) return;
  last_draw_ = now;
  draw(done, epoch_loss, lr, false);
}

void Progress::draw(std::int64_t done, double loss, double lr, bool final) {
  const std::int64_t total = epochs_ * per_epoch_;
  const double t = seconds();
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const double rate = t > 0 ? static_cast<double>(done) / t : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : NAN;
  const std::int64_t epoch = std::min(epochs_, per_epoch_ > 0 ? done / per_epoch_ + 1 : 1);
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %5.1f%%  loss %.4f  lr %.4f  %.0f ex/s  %s %s",
               static_cast<long long>(epoch), static_cast<long long>(epochs_), bar.c_str(),
               100.0 * frac, loss, lr, rate, final ? "time" : "ETA",
               clock_text(final ? t : eta).c_str());
  std::fflush(stderr);
}

void Progress::end_epoch(std::int64_t epoch, double loss) {
  last_epoch_loss_ = loss;
  if (style_ == Style::kLines) {
    const double t = seconds();
    std::fprintf(stderr, "epoch %lld/%lld  loss %.6f  %.0f ex/s  %.1f s\n",
                 static_cast<long long>(epoch), static_cast<long long>(epochs_), loss,
                 t > 0 ? static_cast<double>(epoch * per_epoch_) / t : 0.0, t);
  }
}

void Progress::finish() {
  if (style_ == Style::kBar) {
    draw(last_done_, last_epoch_loss_, 0.0, true);
    std::fprintf(stderr, "\n");
  }
}

void write_loss_svg(const std::string& path, const std::vector<std::pair<double, double>>& curve,
                    std::int64_t epochs, const std::string& title) {
  constexpr double kW = 640, kH = 400, kL = 60, kR = 20, kT = 40, kB = 50;
  double ymax = 0;
  for (const auto& [x, y] : curve) ymax = std::max(ymax, y);
  if (!(ymax > 0)) ymax = 1;
  // Round the top of the y axis up to 1, 2 or 5 times a power of ten.
  const double mag = std::pow(10.0, std::floor(std::log10(ymax)));
  double top = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= ymax) {
      top = m * mag;
      break;
    }
  }
  const double xmax = static_cast<double>(std::max<std::int64_t>(epochs, 1));
  const auto px = [&](double x) { return kL + (kW - kL - kR) * x / xmax; };
  const auto py = [&](double y) { return kH - kB - (kH - kT - kB) * y / top; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
      kW, kH, kW, kH, kW / 2, title);
  for (int i = 0; i <= 5; ++i) {  // y grid and labels
    const double y = top * i / 5;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:g}</text>\n",
        kL, py(y), kW - kR, py(y), kL - 6, py(y) + 4, y);
  }
  const std::int64_t xstep = std::max<std::int64_t>(1, epochs / 10);
  for (std::int64_t e = 0; e <= epochs; e += xstep) {  // x ticks at epochs
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
        px(static_cast<double>(e)), kT, px(static_cast<double>(e)), kH - kB,
        px(static_cast<double>(e)), kH - kB + 16, e);
  }
  svg += fmt::format(
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n"
      "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"black\"/>\n"
      "<text x=\"{4}\" y=\"{5}\" text-anchor=\"middle\">epoch</text>\n"
      "<text x=\"16\" y=\"{6}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {6})\">"
      "training loss</text>\n",
      kL, kT, kH - kB, kW - kR, (kL + kW - kR) / 2, kH - 10, (kT + kH - kB) / 2);
  svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"";
  for (const auto& [x, y] : curve) svg += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
  svg += "\"/>\n</svg>\n";

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw emb::IoError(fmt::format("{}: cannot create the plot file", path));
    out << svg;
    if (!out.flush()) throw emb::IoError(fmt::format("{}: writing the plot failed", path));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw emb::IoError(fmt::format("{}: cannot rename the plot into place", path));
  }
}

}  // namespace emb_cli
