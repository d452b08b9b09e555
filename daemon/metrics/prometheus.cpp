#include "metrics/prometheus.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace apsis::metrics {
namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

void check_metric_name(std::string_view name) {
  const auto start = [](char c) { return is_name_start(c) || c == ':'; };
  const auto rest = [](char c) { return is_name_char(c) || c == ':'; };
  if (name.empty() || !start(name.front()) || !std::ranges::all_of(name, rest))
    throw std::invalid_argument("invalid Prometheus metric name '" + std::string(name) + "'");
}

void check_label_name(std::string_view name) {
  if (name.empty() || !is_name_start(name.front()) || !std::ranges::all_of(name, is_name_char))
    throw std::invalid_argument("invalid Prometheus label name '" + std::string(name) + "'");
  if (name.starts_with("__"))
    throw std::invalid_argument("Prometheus label name '" + std::string(name) + "' is reserved");
}

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  throw std::logic_error("unknown metric type");
}

// HELP text escapes backslash and newline; label values also the double quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote)
      out += "\\\"";
    else
      out += c;
  }
}

void check_buckets(std::string_view name, std::span<const double> upper_bounds,
                   std::span<const std::uint64_t> cumulative_counts, std::uint64_t count) {
  if (upper_bounds.size() != cumulative_counts.size())
    throw std::logic_error("histogram '" + std::string(name) + "': one count per bucket bound");
  for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
    const bool increasing =
        i == 0 || (upper_bounds[i] > upper_bounds[i - 1] && cumulative_counts[i] >= cumulative_counts[i - 1]);
    if (!std::isfinite(upper_bounds[i]) || !increasing || cumulative_counts[i] > count)
      throw std::logic_error("histogram '" + std::string(name) +
                             "': bounds must be finite and increasing, counts cumulative and at most the count");
  }
}

}  // namespace

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return "0";  // also -0
  // Integers up to 2^53 are exact in a double: counters print as counts, not as 1.2345e+06.
  constexpr double kExactIntegers = 9007199254740992.0;
  const bool integral = std::trunc(value) == value && std::fabs(value) <= kExactIntegers;
  char buffer[64];
  const auto [end, ec] = integral ? std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed)
                                  : std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc{}) throw std::logic_error("cannot format a sample value");
  return std::string(buffer, end);
}

PrometheusText& PrometheusText::family(std::string_view name, std::string_view help, MetricType type) {
  check_metric_name(name);
  if (!families_.emplace(name).second)
    throw std::logic_error("Prometheus metric family '" + std::string(name) + "' written twice");
  name_ = name;
  type_ = type;
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  append_escaped(text_, help, false);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type_name(type);
  text_ += '\n';
  return *this;
}

PrometheusText& PrometheusText::sample(const Labels& labels, double value) {
  require_family();
  if (type_ == MetricType::histogram)
    throw std::logic_error("histogram '" + name_ + "' takes histogram(), not sample()");
  check_labels(labels);
  write_sample("", labels, nullptr, value);
  return *this;
}

PrometheusText& PrometheusText::histogram(const Labels& labels, std::span<const double> upper_bounds,
                                          std::span<const std::uint64_t> cumulative_counts, double sum,
                                          std::uint64_t count) {
  require_family();
  if (type_ != MetricType::histogram)
    throw std::logic_error("family '" + name_ + "' is a " + type_name(type_) + ", not a histogram");
  check_labels(labels);
  if (std::ranges::any_of(labels, [](const auto& label) { return label.first == "le"; }))
    throw std::invalid_argument("histogram '" + name_ + "': label 'le' is reserved");
  check_buckets(name_, upper_bounds, cumulative_counts, count);

  std::pair<std::string, std::string> le{"le", ""};
  for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
    le.second = format_value(upper_bounds[i]);
    write_sample("_bucket", labels, &le, static_cast<double>(cumulative_counts[i]));
  }
  le.second = "+Inf";
  write_sample("_bucket", labels, &le, static_cast<double>(count));
  write_sample("_sum", labels, nullptr, sum);
  write_sample("_count", labels, nullptr, static_cast<double>(count));
  return *this;
}

void PrometheusText::require_family() const {
  if (name_.empty()) throw std::logic_error("Prometheus sample written before any family()");
}

// Checked before anything is written, so a rejected sample leaves the text as it was.
void PrometheusText::check_labels(const Labels& labels) const {
  std::set<std::string_view> seen;
  for (const auto& [name, value] : labels) {
    check_label_name(name);
    if (!seen.insert(name).second) throw std::invalid_argument("label '" + name + "' given twice for '" + name_ + "'");
  }
}

void PrometheusText::write_sample(std::string_view suffix, const Labels& labels,
                                  const std::pair<std::string, std::string>* extra, double value) {
  bool first = true;
  const auto append_label = [&](const std::pair<std::string, std::string>& label) {
    text_ += first ? '{' : ',';
    first = false;
    text_ += label.first;
    text_ += "=\"";
    append_escaped(text_, label.second, true);
    text_ += '"';
  };
  text_ += name_;
  text_ += suffix;
  for (const auto& label : labels) append_label(label);
  if (extra) append_label(*extra);
  if (!first) text_ += '}';
  text_ += ' ';
  text_ += format_value(value);
  text_ += '\n';
}

}  // namespace apsis::metrics
