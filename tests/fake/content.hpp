#pragma once

// Deterministic export file contents, generated on the fly so that memory does not
// grow with the file size.
//
// A file is a fixed prefix (CSV header line, fake zip/xlsx preamble or the opening
// bracket of a JSON array), fixed-width rows and a short suffix (CSV's final newline,
// the JSON array's closing bracket). Row r carries r as a 10-digit number; rows are produced in
// blocks of 1000, so a block is a template whose last three digits never change and
// only the seven leading digits of each number are patched per block. That keeps
// the per-byte work down to a memcpy.

#include "reply.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace apsis_fake {

class Content {
public:
    // A JSON file holds whole rows only, so its size() is the asked size rounded down to
    // a row (at least one row); the other formats are exactly the asked size.
    Content(Format format, std::string_view export_id, std::uint64_t size);

    std::uint64_t size() const { return size_; }

    // Bytes from offset up to at most end (end <= size()). Non-empty while
    // offset < end; valid until the next call.
    std::string_view view(std::uint64_t offset, std::uint64_t end);

private:
    void build_template(Format format, std::string_view export_id);
    void place_suffix(Format format, std::uint64_t asked_size);
    void load_block(std::uint64_t index);
    std::string_view row_view(std::uint64_t offset, std::uint64_t end);

    std::uint64_t size_ = 0;
    // Rows run from the prefix up to rows_end_, the suffix from there to size_. CSV files
    // end in a newline even when the last row is cut short.
    std::uint64_t rows_end_ = 0;
    std::string prefix_;
    std::string suffix_;
    std::string block_;
    std::vector<std::uint32_t> high_digits_at_;
    std::uint64_t block_index_ = 0;
};

} // namespace apsis_fake
