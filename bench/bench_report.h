// Shared by the benchmarks: timing, medians and the `case emb_ns anchor anchor_ns speedup` lines
// (console and a TSV file), with the spread of the per-repetition speedups beside them.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace emb::bench {

/// Nanoseconds fn() takes.
template <typename Fn>
double time_ns(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Writes each case to the console and to `path` (tab-separated, a header line first), and the
/// spread (min / median / max of the per-repetition speedups) to `spread_path`.
class Report {
 public:
  Report(const std::string& path, const std::string& spread_path)
      : tsv_(std::fopen(path.c_str(), "w")), spread_(std::fopen(spread_path.c_str(), "w")) {
    if (tsv_) std::fprintf(tsv_, "case\temb_ns\tanchor\tanchor_ns\tspeedup\n");
    if (spread_) {
      std::fprintf(spread_, "case\tanchor\tspeedup_min\tspeedup_median\tspeedup_max\treps\n");
    }
    std::printf("case\temb_ns\tanchor\tanchor_ns\tspeedup\n");
  }
  ~Report() {
    if (tsv_) std::fclose(tsv_);
    if (spread_) std::fclose(spread_);
  }
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;
  bool ok() const { return tsv_ && spread_; }

  /// emb and anchor times of the same repetitions (ns per unit of work).
  void add(const std::string& name, const std::vector<double>& emb_ns, const std::string& anchor,
           const std::vector<double>& anchor_ns) {
    const double e = median(emb_ns);
    const double a = median(anchor_ns);
    std::vector<double> ratios;
    for (std::size_t i = 0; i < emb_ns.size() && i < anchor_ns.size(); ++i) {
      ratios.push_back(anchor_ns[i] / emb_ns[i]);
    }
    std::printf("%s\t%.1f\t%s\t%.1f\t%.2f\n", name.c_str(), e, anchor.c_str(), a, a / e);
    std::fflush(stdout);
    if (tsv_)
      std::fprintf(tsv_, "%s\t%.1f\t%s\t%.1f\t%.2f\n", name.c_str(), e, anchor.c_str(), a, a / e);
    if (spread_ && !ratios.empty()) {
      std::fprintf(spread_, "%s\t%s\t%.2f\t%.2f\t%.2f\t%zu\n", name.c_str(), anchor.c_str(),
                   *std::min_element(ratios.begin(), ratios.end()), median(ratios),
                   *std::max_element(ratios.begin(), ratios.end()), ratios.size());
    }
  }

 private:
  std::FILE* tsv_;
  std::FILE* spread_;
};

}  // namespace emb::bench
