#include "download.hpp"

#include "content.hpp"
#include "gzip_stream.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>

namespace apsis_fake {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

constexpr std::uint64_t short_length_excess = 1000;
constexpr std::size_t slow_bytes = 20;
constexpr std::chrono::milliseconds slow_interval{100};

// Writes body pieces, adding chunk framing when needed and trickling the first bytes
// for download_slow.
class BodyWriter {
public:
    BodyWriter(tcp::socket& socket, bool chunked, bool slow)
        : socket_(socket), chunked_(chunked), slow_left_(slow ? slow_bytes : 0)
    {
    }

    awaitable<void> write(std::string_view piece)
    {
        if (slow_left_ > 0)
            co_await trickle(piece);
        if (!piece.empty())
            co_await write_framed(piece);
    }

    awaitable<void> finish()
    {
        if (chunked_)
            co_await asio::async_write(socket_, http::make_chunk_last(), use_awaitable);
    }

private:
    // Sends the head of piece one byte at a time and leaves the rest in piece.
    awaitable<void> trickle(std::string_view& piece)
    {
        asio::steady_timer timer(socket_.get_executor());
        while (slow_left_ > 0 && !piece.empty()) {
            co_await write_framed(piece.substr(0, 1));
            piece.remove_prefix(1);
            --slow_left_;
            timer.expires_after(slow_interval);
            co_await timer.async_wait(use_awaitable);
        }
    }

    awaitable<void> write_framed(std::string_view piece)
    {
        if (chunked_)
            co_await asio::async_write(socket_, http::make_chunk(asio::buffer(piece)), use_awaitable);
        else
            co_await asio::async_write(socket_, asio::buffer(piece), use_awaitable);
    }

    tcp::socket& socket_;
    bool chunked_;
    std::size_t slow_left_;
};

// Uncompressed body: views straight into the content generator, no copying.
class PlainStream {
public:
    PlainStream(Content& content, std::uint64_t end) : content_(content), end_(end) {}

    std::string_view next()
    {
        auto piece = content_.view(offset_, end_);
        offset_ += piece.size();
        return piece;
    }

private:
    Content& content_;
    std::uint64_t offset_ = 0;
    std::uint64_t end_;
};

template <typename Source>
awaitable<void> pump(Source& source, BodyWriter& writer)
{
    for (auto piece = source.next(); !piece.empty(); piece = source.next())
        co_await writer.write(piece);
}

std::string_view extension(Format format)
{
    switch (format) {
    case Format::xlsx:
        return ".xlsx";
    case Format::json:
        return ".json";
    default:
        return ".csv";
    }
}

std::string_view content_type(Format format)
{
    switch (format) {
    case Format::xlsx:
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    case Format::json:
        return "application/json";
    default:
        return "text/csv;charset=UTF-8;header=present";
    }
}

awaitable<void> write_header(tcp::socket& socket, const Download& d, std::uint64_t size, unsigned version,
                             bool keep_alive)
{
    http::response<http::empty_body> res{http::status::ok, version};
    res.set(http::field::server, "apsis-fake");
    res.set(http::field::content_type, content_type(d.format));
    res.set(http::field::content_disposition, "attachment; filename=\"" + d.export_id + std::string(extension(d.format)) + "\"");
    if (d.gzip)
        res.set(http::field::content_encoding, "gzip");
    if (d.unframed)
        keep_alive = false;  // the end of the body is the end of the connection
    else if (d.chunked)
        res.chunked(true);
    else
        res.content_length(size + (d.ending == DownloadEnding::short_length ? short_length_excess : 0));
    res.keep_alive(keep_alive);
    http::response_serializer<http::empty_body> serializer{res};
    co_await http::async_write_header(socket, serializer, use_awaitable);
}

GzipStream::Ending gzip_ending(DownloadEnding ending)
{
    switch (ending) {
    case DownloadEnding::cut:
        return GzipStream::Ending::sync_flush;
    case DownloadEnding::corrupt_gzip:
        return GzipStream::Ending::bad_crc;
    default:
        return GzipStream::Ending::finish;
    }
}

} // namespace

awaitable<DownloadResult> stream_download(tcp::socket& socket, const Download& d, unsigned http_version,
                                          bool keep_alive)
{
    Content content(d.format, d.export_id, d.size);
    const std::uint64_t size = d.empty ? 0 : content.size();
    co_await write_header(socket, d, size, http_version, keep_alive);
    std::uint64_t end = d.ending == DownloadEnding::cut ? size / 2 : size;
    BodyWriter writer(socket, d.chunked && !d.unframed, d.slow);
    if (d.gzip && d.multi_member) {
        // Two members, each with its own header and CRC/length trailer; the fault endings apply to the last.
        GzipStream first(content, 0, end / 2, GzipStream::Ending::finish);
        co_await pump(first, writer);
        GzipStream second(content, end / 2, end, gzip_ending(d.ending));
        co_await pump(second, writer);
    } else if (d.gzip) {
        GzipStream gzip(content, end, gzip_ending(d.ending));
        co_await pump(gzip, writer);
    } else {
        PlainStream plain(content, end);
        co_await pump(plain, writer);
    }

    // Both endings leave the response short of what the headers promised.
    if (d.ending == DownloadEnding::cut || d.ending == DownloadEnding::short_length)
        co_return DownloadResult::aborted;
    if (d.unframed)
        co_return DownloadResult::closed;
    co_await writer.finish();
    co_return DownloadResult::completed;
}

} // namespace apsis_fake
