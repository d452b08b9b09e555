// Builds a Prometheus text exposition (format 0.0.4) for one scrape. Pure: no I/O, no registry; the
// caller reads its counters and writes them here, family by family.
//
// Misuse is a programming error and throws std::logic_error (std::invalid_argument for a bad
// metric or label name): a sample outside a family, a family named twice, a histogram written
// as a plain sample, reserved label names.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace apsis::metrics {

enum class MetricType { counter, gauge, histogram };

// Name and value; the name must match [a-zA-Z_][a-zA-Z0-9_]* and not start with "__".
using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  // Opens a family: writes its HELP and TYPE lines. The samples that follow belong to it.
  PrometheusText& family(std::string_view name, std::string_view help, MetricType type);

  // One sample of the open counter or gauge family.
  PrometheusText& sample(double value) { return sample({}, value); }
  PrometheusText& sample(const Labels& labels, double value);

  // One histogram of the open histogram family. `upper_bounds` are finite and strictly
  // increasing, `cumulative_counts[i]` counts the observations <= upper_bounds[i]; the +Inf
  // bucket is `count`. Writes name_bucket{le="..."} for each bound and +Inf, name_sum, name_count.
  PrometheusText& histogram(const Labels& labels, std::span<const double> upper_bounds,
                            std::span<const std::uint64_t> cumulative_counts, double sum, std::uint64_t count);

  std::string str() const { return text_; }

 private:
  void write_sample(std::string_view suffix, const Labels& labels, const std::pair<std::string, std::string>* extra,
                    double value);
  void require_family() const;
  void check_labels(const Labels& labels) const;

  std::string text_;
  std::string name_;  // of the open family; empty before the first
  MetricType type_{MetricType::gauge};
  std::set<std::string, std::less<>> families_;
};

// A sample value as the format spells it: integers without exponent or trailing zeros ("42"),
// others in the shortest form that reads back exactly ("0.25", "1e-07"); "+Inf", "-Inf", "NaN".
std::string format_value(double value);

}  // namespace apsis::metrics
