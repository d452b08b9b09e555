#pragma once

// What request handlers hand back to the connection: either a small, complete
// response or a plan for streaming an export file, which the connection executes.

#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <variant>

namespace apsis_fake {

namespace http = boost::beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

enum class Format { csv, xlsx, json };

// How a download deliberately goes wrong; at most one per download.
enum class DownloadEnding {
    normal,
    cut,          // stop after about half the content and close the socket
    short_length, // send everything but promise 1000 bytes more (or omit the last chunk)
    corrupt_gzip, // complete gzip framing with a wrong CRC32 in the trailer
};

struct Download {
    std::string export_id;
    Format format = Format::csv;
    std::uint64_t size = 0;
    bool gzip = false;
    bool chunked = false;
    DownloadEnding ending = DownloadEnding::normal;
    bool slow = false;
    // Faults: no Content-Length and no chunking, the end marked only by closing the connection;
    // an empty body; a gzip body in two members (valid RFC 1952, but not what zlib writes).
    bool unframed = false;
    bool empty = false;
    bool multi_member = false;
};

// No answer at all: the connection is reset (RST) as soon as the request is read.
struct Reset {};

using Reply = std::variant<Response, Download, Reset>;

inline Response json_response(http::status status, const boost::json::value& body)
{
    Response res{status, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = boost::json::serialize(body);
    res.prepare_payload();
    return res;
}

// The gateway's own answers (auth, throttling, routing) carry {"message": ...}.
inline Response message_response(http::status status, std::string_view message)
{
    return json_response(status, boost::json::object{{"message", message}});
}

// The API's own errors carry the documented {"title", "status", "detail"} body.
inline Response problem_response(http::status status, std::string_view title, std::string_view detail)
{
    return json_response(status, boost::json::object{{"title", title},
                                                     {"status", static_cast<unsigned>(status)},
                                                     {"detail", detail}});
}

} // namespace apsis_fake
