#pragma once

// Streams an export file over a connection: headers, then the body in fixed-size
// pieces (optionally gzip'd and/or chunked), with the download faults applied.

#include "reply.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace apsis_fake {

enum class DownloadResult {
    completed, // the response is complete; the connection may be reused
    aborted,   // deliberately broken; the caller must close the connection
    closed,    // complete, but its end was marked only by closing: the caller must close the connection
};

boost::asio::awaitable<DownloadResult> stream_download(boost::asio::ip::tcp::socket& socket, const Download& download,
                                                       unsigned http_version, bool keep_alive);

} // namespace apsis_fake
