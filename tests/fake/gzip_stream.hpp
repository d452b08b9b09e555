#pragma once

// Incremental gzip encoder pulling from a Content. The gzip header and trailer are
// written here around a raw deflate stream (same bytes as zlib's windowBits 31
// wrapper) because that makes a deliberately wrong CRC32 trivial to produce.

#include "content.hpp"

#include <zlib.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace apsis_fake {

class GzipStream {
public:
    enum class Ending {
        finish,      // a complete, valid gzip member
        bad_crc,     // complete framing, wrong CRC32
        sync_flush,  // decodable so far but unterminated, for cut downloads
    };

    // Compresses the content's bytes [start, end) as one member.
    GzipStream(Content& content, std::uint64_t end, Ending ending) : GzipStream(content, 0, end, ending) {}
    GzipStream(Content& content, std::uint64_t start, std::uint64_t end, Ending ending);
    ~GzipStream();
    GzipStream(const GzipStream&) = delete;
    GzipStream& operator=(const GzipStream&) = delete;

    // Next piece of compressed output; empty once the stream is complete.
    std::string_view next();

private:
    enum class Phase { header, body, trailer, done };

    void deflate_into_buffer();
    void feed_input();
    void write_trailer();

    Content& content_;
    std::uint64_t offset_ = 0;
    std::uint64_t end_;
    Ending ending_;
    Phase phase_ = Phase::header;
    z_stream z_{};
    uLong crc_;
    std::uint32_t input_size_ = 0;
    std::vector<unsigned char> out_;
};

} // namespace apsis_fake
