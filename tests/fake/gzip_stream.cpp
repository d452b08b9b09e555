#include "gzip_stream.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace apsis_fake {

namespace {

// Small enough that one step (about 10x this in input) does not stall other connections long.
constexpr std::size_t output_buffer_size = 64 * 1024;
// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unix, as zlib writes it.
constexpr unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
constexpr std::size_t trailer_size = 8;

} // namespace

GzipStream::GzipStream(Content& content, std::uint64_t start, std::uint64_t end, Ending ending)
    : content_(content), offset_(start), end_(end), ending_(ending), crc_(crc32(0L, Z_NULL, 0)), out_(output_buffer_size)
{
    // Level 1: the fake must keep up with the client, ratio barely matters.
    if (deflateInit2(&z_, Z_BEST_SPEED, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
}

GzipStream::~GzipStream() { deflateEnd(&z_); }

std::string_view GzipStream::next()
{
    z_.next_out = out_.data();
    z_.avail_out = static_cast<uInt>(out_.size());
    if (phase_ == Phase::header) {
        std::memcpy(z_.next_out, gzip_header, sizeof gzip_header);
        z_.next_out += sizeof gzip_header;
        z_.avail_out -= sizeof gzip_header;
        phase_ = Phase::body;
    }
    if (phase_ == Phase::body)
        deflate_into_buffer();
    if (phase_ == Phase::trailer && z_.avail_out >= trailer_size)
        write_trailer();
    return {reinterpret_cast<const char*>(out_.data()), out_.size() - z_.avail_out};
}

void GzipStream::deflate_into_buffer()
{
    while (z_.avail_out > 0) {
        feed_input();
        bool last = z_.avail_in == 0 && offset_ >= end_;
        int flush = !last ? Z_NO_FLUSH : ending_ == Ending::sync_flush ? Z_SYNC_FLUSH : Z_FINISH;
        int rc = deflate(&z_, flush);
        if (rc == Z_STREAM_ERROR)
            throw std::runtime_error("deflate failed");
        if (flush == Z_FINISH && rc == Z_STREAM_END) {
            phase_ = Phase::trailer;
            return;
        }
        // A sync flush is complete once it did not run out of output space.
        if (flush == Z_SYNC_FLUSH && z_.avail_out > 0) {
            phase_ = Phase::done;
            return;
        }
    }
}

void GzipStream::feed_input()
{
    if (z_.avail_in > 0 || offset_ >= end_)
        return;
    std::string_view piece = content_.view(offset_, end_);
    offset_ += piece.size();
    auto bytes = reinterpret_cast<const Bytef*>(piece.data());
    auto length = static_cast<uInt>(piece.size());
    crc_ = crc32(crc_, bytes, length);
    input_size_ += static_cast<std::uint32_t>(piece.size());  // ISIZE is the length mod 2^32
    z_.next_in = bytes;
    z_.avail_in = length;
}

void GzipStream::write_trailer()
{
    auto crc = static_cast<std::uint32_t>(crc_);
    if (ending_ == Ending::bad_crc)
        crc ^= 0xffffffffU;
    for (std::uint32_t value : {crc, input_size_})
        for (int i = 0; i < 4; ++i, value >>= 8)
            *z_.next_out++ = static_cast<Bytef>(value & 0xff);
    z_.avail_out -= trailer_size;
    phase_ = Phase::done;
}

} // namespace apsis_fake
