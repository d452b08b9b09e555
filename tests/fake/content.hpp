#pragma once

// Deterministic export file contents, generated on the fly so that memory does not
// grow with the file size.
//
// A file is a fixed prefix (CSV header line or fake zip/xlsx preamble) followed by
// fixed-width rows. Row r carries r as a 10-digit number; rows are produced in
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
    Content(Format format, std::string_view export_id, std::uint64_t size);

    std::uint64_t size() const { return size_; }

    // Bytes from offset up to at most end (end <= size()). Non-empty while
    // offset < end; valid until the next call.
    std::string_view view(std::uint64_t offset, std::uint64_t end);

private:
    void build_template(Format format, std::string_view export_id);
    void load_block(std::uint64_t index);
    std::string_view row_view(std::uint64_t offset, std::uint64_t end);

    std::uint64_t size_;
    // CSV files end in a newline even when the last row is cut short.
    bool newline_at_end_;
    std::string prefix_;
    std::string block_;
    std::vector<std::uint32_t> high_digits_at_;
    std::uint64_t block_index_ = 0;
};

} // namespace apsis_fake
