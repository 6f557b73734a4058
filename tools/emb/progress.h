// Training progress on stderr: a bar redrawn a few times a second on a terminal, one plain line
// per epoch otherwise, nothing with --quiet. Also keeps the loss curve for --plot.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace emb_cli {

class Progress {
 public:
  enum class Style { kQuiet, kBar, kLines };
  /// kBar when stderr is a terminal, else kLines; kQuiet when quiet.
  static Style detect(bool quiet);

  Progress(Style style, std::int64_t epochs, std::int64_t examples_per_epoch);

  /// Called by the training loop after each step: examples done in total, the mean loss of the
  /// current epoch so far, the current learning rate.
  void update(std::int64_t done, double epoch_loss, double lr);
  /// Called at the end of each epoch (1-based) with its mean loss.
  void end_epoch(std::int64_t epoch, double loss);
  /// Final line (total time, examples/s).
  void finish();

  /// (fraction of training done, mean loss since the previous point), about 200 points.
  const std::vector<std::pair<double, double>>& curve() const { return curve_; }
  double seconds() const;

 private:
  void draw(std::int64_t done, double loss, double lr, bool final);

  Style style_;
  std::int64_t epochs_;
  std::int64_t per_epoch_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::vector<std::pair<double, double>> curve_;
  std::int64_t next_point_ = 0;
  double point_loss_sum_ = 0;
  std::int64_t point_steps_ = 0;
  double last_epoch_loss_ = 0;
  std::int64_t last_done_ = 0;
};

/// Writes the loss curve as an SVG line chart (x: epochs, y: training loss). Throws IoError.
void write_loss_svg(const std::string& path, const std::vector<std::pair<double, double>>& curve,
                    std::int64_t epochs, const std::string& title);

}  // namespace emb_cli
