#include <doctest/doctest.h>

#include "metrics/histogram.hpp"

using apsis::Milliseconds;
using apsis::metrics::MillisecondHistogram;

TEST_CASE("the lateness histogram reports bucket upper bounds for quantiles and the true maximum") {
  MillisecondHistogram lateness;
  CHECK(lateness.quantile(0.99) == Milliseconds(0));
  for (int i = 0; i < 98; ++i) lateness.record(Milliseconds(0));
  lateness.record(Milliseconds(37));
  lateness.record(Milliseconds(9000));  // past the last bucket
  CHECK(lateness.count() == 100);
  CHECK(lateness.quantile(0.5) == Milliseconds(1));
  CHECK(lateness.quantile(0.99) == Milliseconds(38));
  CHECK(lateness.quantile(1.0) == Milliseconds(9000));
  CHECK(lateness.max() == Milliseconds(9000));
  lateness.record(Milliseconds(-5));  // a timer that fired early counts as on time
  CHECK(lateness.max() == Milliseconds(9000));
  CHECK(lateness.count() == 101);
}
