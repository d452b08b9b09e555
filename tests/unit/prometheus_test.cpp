#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "metrics/prometheus.hpp"

using namespace apsis::metrics;

TEST_CASE("each family's HELP and TYPE come once, before its samples") {
  PrometheusText text;
  text.family("apsis_jobs", "Jobs by state.", MetricType::gauge)
      .sample({{"state", "submitted"}}, 3)
      .sample({{"state", "done"}}, 10)
      .family("apsis_submissions_total", "Export submissions.", MetricType::counter)
      .sample(7);
  CHECK(text.str() ==
        "# HELP apsis_jobs Jobs by state.\n"
        "# TYPE apsis_jobs gauge\n"
        "apsis_jobs{state=\"submitted\"} 3\n"
        "apsis_jobs{state=\"done\"} 10\n"
        "# HELP apsis_submissions_total Export submissions.\n"
        "# TYPE apsis_submissions_total counter\n"
        "apsis_submissions_total 7\n");
  CHECK(PrometheusText::kContentType == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("label values escape backslash, quote and newline; HELP escapes backslash and newline") {
  PrometheusText text;
  text.family("apsis_last_success_time_seconds", "Last success.\nPer export, in C:\\ \"seconds\".", MetricType::gauge)
      .sample({{"export", "a\\b\"c\nd"}, {"kind", ""}}, 1764397800);
  CHECK(text.str() ==
        "# HELP apsis_last_success_time_seconds Last success.\\nPer export, in C:\\\\ \"seconds\".\n"
        "# TYPE apsis_last_success_time_seconds gauge\n"
        "apsis_last_success_time_seconds{export=\"a\\\\b\\\"c\\nd\",kind=\"\"} 1764397800\n");
}

TEST_CASE("values: integers plainly, fractions shortest, infinities and NaN as Prometheus spells them") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(-0.0) == "0");
  CHECK(format_value(42) == "42");
  CHECK(format_value(-3) == "-3");
  CHECK(format_value(1e6) == "1000000");
  CHECK(format_value(1764397800) == "1764397800");
  CHECK(format_value(9007199254740992.0) == "9007199254740992");
  CHECK(format_value(1e20) == "1e+20");
  CHECK(format_value(0.1) == "0.1");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(1764397800.5) == "1764397800.5");
  CHECK(format_value(1e-7) == "1e-07");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("a histogram writes cumulative buckets up to +Inf, then sum and count") {
  PrometheusText text;
  const double bounds[] = {0.5, 1, 10};
  const std::uint64_t counts[] = {1, 3, 3};
  text.family("apsis_download_seconds", "Time to download an export file.", MetricType::histogram)
      .histogram({{"export", "x"}}, bounds, counts, 7.25, 4)
      .histogram({}, {}, {}, 0, 0);
  CHECK(text.str() ==
        "# HELP apsis_download_seconds Time to download an export file.\n"
        "# TYPE apsis_download_seconds histogram\n"
        "apsis_download_seconds_bucket{export=\"x\",le=\"0.5\"} 1\n"
        "apsis_download_seconds_bucket{export=\"x\",le=\"1\"} 3\n"
        "apsis_download_seconds_bucket{export=\"x\",le=\"10\"} 3\n"
        "apsis_download_seconds_bucket{export=\"x\",le=\"+Inf\"} 4\n"
        "apsis_download_seconds_sum{export=\"x\"} 7.25\n"
        "apsis_download_seconds_count{export=\"x\"} 4\n"
        "apsis_download_seconds_bucket{le=\"+Inf\"} 0\n"
        "apsis_download_seconds_sum 0\n"
        "apsis_download_seconds_count 0\n");
}

TEST_CASE("a family without samples is just its HELP and TYPE") {
  PrometheusText text;
  text.family("apsis:next_run_time_seconds", "", MetricType::gauge);
  CHECK(text.str() == "# HELP apsis:next_run_time_seconds \n# TYPE apsis:next_run_time_seconds gauge\n");
}

TEST_CASE("misuse is a programming error, and a rejected sample writes nothing") {
  PrometheusText text;
  CHECK_THROWS_AS(text.sample(1), std::logic_error);
  CHECK_THROWS_AS(text.family("", "h", MetricType::gauge), std::invalid_argument);
  CHECK_THROWS_AS(text.family("2xx", "h", MetricType::gauge), std::invalid_argument);
  CHECK_THROWS_AS(text.family("apsis-jobs", "h", MetricType::gauge), std::invalid_argument);
  CHECK(text.str().empty());

  text.family("apsis_polls_total", "Polls.", MetricType::counter);
  const std::string before = text.str();
  CHECK_THROWS_AS(text.family("apsis_polls_total", "again", MetricType::counter), std::logic_error);
  CHECK_THROWS_AS(text.sample({{"__name", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(text.sample({{"code", "200"}, {"a b", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(text.sample({{"code", "200"}, {"code", "404"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(text.sample({{"9code", "200"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(text.histogram({}, {}, {}, 0, 0), std::logic_error);
  CHECK(text.str() == before);

  text.family("apsis_seconds", "h", MetricType::histogram);
  const double bounds[] = {1, 2};
  const double unordered[] = {2, 1};
  const double infinite[] = {1, std::numeric_limits<double>::infinity()};
  const std::uint64_t counts[] = {1, 2};
  const std::uint64_t falling[] = {2, 1};
  CHECK_THROWS_AS(text.sample(1), std::logic_error);
  CHECK_THROWS_AS(text.histogram({{"le", "1"}}, bounds, counts, 1, 2), std::invalid_argument);
  CHECK_THROWS_AS(text.histogram({}, unordered, counts, 1, 2), std::logic_error);
  CHECK_THROWS_AS(text.histogram({}, infinite, counts, 1, 2), std::logic_error);
  CHECK_THROWS_AS(text.histogram({}, bounds, falling, 1, 2), std::logic_error);
  CHECK_THROWS_AS(text.histogram({}, bounds, counts, 1, 1), std::logic_error);
  CHECK_THROWS_AS(text.histogram({}, bounds, std::span<const std::uint64_t>(counts, 1), 1, 2), std::logic_error);
  CHECK(text.str() == before + "# HELP apsis_seconds h\n# TYPE apsis_seconds histogram\n");
}
