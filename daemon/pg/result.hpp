// The rows of one statement, owning libpq's PGresult. Values are read as text (every query uses the
// text format), so what `psql` shows is what the store parses.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

struct pg_result;  // libpq's PGresult; its header stays private to this folder.

namespace apsis::pg {

class Result {
 public:
  Result() = default;
  // Takes ownership (PQclear at destruction).
  explicit Result(pg_result* result) : result_(result) {}
  Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result();

  int rows() const;
  int columns() const;
  // The index of a column by name; throws std::out_of_range naming it when there is none.
  int column(std::string_view name) const;

  // Row and column are checked: std::out_of_range beyond the result. The views live as long as the Result.
  bool is_null(int row, int column) const;
  std::string_view text(int row, int column) const;  // "" for NULL
  std::optional<std::string_view> optional_text(int row, int column) const;
  // Throws std::invalid_argument when the value is NULL or not an integer.
  std::int64_t int64(int row, int column) const;
  std::optional<std::int64_t> optional_int64(int row, int column) const;

  // Rows an INSERT/UPDATE/DELETE touched (PQcmdTuples); 0 for other statements.
  std::int64_t affected() const;

  pg_result* get() const { return result_; }

 private:
  void check(int row, int column) const;

  pg_result* result_ = nullptr;
};

}  // namespace apsis::pg
