#include "pg/result.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <stdexcept>
#include <string>

namespace apsis::pg {

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (result_) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

Result::~Result() {
  if (result_) PQclear(result_);
}

int Result::rows() const { return result_ ? PQntuples(result_) : 0; }

int Result::columns() const { return result_ ? PQnfields(result_) : 0; }

int Result::column(std::string_view name) const {
  // PQfnumber folds unquoted names to lower case like SQL does; quoting keeps the name exact.
  const std::string quoted = "\"" + std::string(name) + "\"";
  const int index = result_ ? PQfnumber(result_, quoted.c_str()) : -1;
  if (index < 0) throw std::out_of_range("the query result has no column " + std::string(name));
  return index;
}

void Result::check(int row, int column) const {
  if (row < 0 || row >= rows() || column < 0 || column >= columns())
    throw std::out_of_range("row " + std::to_string(row) + ", column " + std::to_string(column) +
                            " is outside the query result (" + std::to_string(rows()) + " rows, " +
                            std::to_string(columns()) + " columns)");
}

bool Result::is_null(int row, int column) const {
  check(row, column);
  return PQgetisnull(result_, row, column) != 0;
}

std::string_view Result::text(int row, int column) const {
  check(row, column);
  return {PQgetvalue(result_, row, column), static_cast<std::size_t>(PQgetlength(result_, row, column))};
}

std::optional<std::string_view> Result::optional_text(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return text(row, column);
}

std::int64_t Result::int64(int row, int column) const {
  const auto value = optional_int64(row, column);
  if (!value) throw std::invalid_argument("column " + std::string(PQfname(result_, column)) + " is NULL, expected an integer");
  return *value;
}

std::optional<std::int64_t> Result::optional_int64(int row, int column) const {
  const auto value = optional_text(row, column);
  if (!value) return std::nullopt;
  std::int64_t number = 0;
  const auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), number);
  if (error != std::errc() || end != value->data() + value->size())
    throw std::invalid_argument("column " + std::string(PQfname(result_, column)) + " holds '" + std::string(*value) +
                                "', expected an integer");
  return number;
}

std::int64_t Result::affected() const {
  const char* count = result_ ? PQcmdTuples(result_) : "";
  std::int64_t number = 0;
  std::from_chars(count, count + std::char_traits<char>::length(count), number);
  return number;
}

}  // namespace apsis::pg
