#include "pg/settings.hpp"

#include <libpq-fe.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace apsis::pg {
namespace {

constexpr std::string_view password_file_key = "password_file";

bool is_name_char(char c, bool first) {
  const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  return letter || (!first && c >= '0' && c <= '9');
}

std::string expand(std::string_view text, const EnvLookup& env) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 == text.size() || (text[i + 1] != '$' && text[i + 1] != '{')) {
      out += text[i];
    } else if (text[i + 1] == '$') {
      out += '$';
      ++i;
    } else {
      const auto close = text.find('}', i + 2);
      if (close == std::string_view::npos)
        throw std::invalid_argument("state_db: unterminated '${': expected ${NAME} (write $$ for a literal '$')");
      const std::string name(text.substr(i + 2, close - i - 2));
      bool valid = !name.empty();
      for (std::size_t k = 0; k < name.size(); ++k) valid = valid && is_name_char(name[k], k == 0);
      if (!valid) throw std::invalid_argument("state_db: invalid environment variable name in '${...}'");
      const auto value = env ? env(name) : std::nullopt;
      if (!value) throw std::invalid_argument("state_db: environment variable " + name + " is not set");
      out += *value;
      i = close;
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int high = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int low = high >= 0 ? hex_digit(text[i + 2]) : -1;
    if (low < 0) throw std::invalid_argument("state_db: bad percent-encoding in password_file");
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string join(const std::vector<std::string_view>& parts, char separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

// libpq rejects parameters it does not know, so ours leaves the URI before libpq sees it.
ConnectionSettings take_password_file(const std::string& uri) {
  const auto question = uri.find('?');
  if (question == std::string::npos) return {uri, std::nullopt};
  ConnectionSettings settings;
  std::vector<std::string_view> kept;
  for (const auto param : split(std::string_view(uri).substr(question + 1), '&')) {
    const auto equals = param.find('=');
    if (param.substr(0, equals) != password_file_key) {
      if (!param.empty()) kept.push_back(param);
      continue;
    }
    if (equals == std::string_view::npos || equals + 1 == param.size())
      throw std::invalid_argument("state_db: password_file needs a path (password_file=/run/secrets/db)");
    settings.password_file = percent_decode(param.substr(equals + 1));
  }
  settings.conninfo = uri.substr(0, question);
  if (!kept.empty()) settings.conninfo += "?" + join(kept, '&');
  return settings;
}

void validate_with_libpq(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  std::unique_ptr<char, decltype(&PQfreemem)> message(error, &PQfreemem);
  if (options) {
    PQconninfoFree(options);
    return;
  }
  std::string text = message ? message.get() : "out of memory";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  throw std::invalid_argument("state_db: libpq rejects the URI: " + text);
}

// A password appears as userinfo (user:secret@host) or as a query parameter (password=secret).
// Userinfo ends at the last '@' before the path: an unencoded '@' or '?' in a password is hidden
// whole (erring towards hiding too much, never too little).
std::string redact_userinfo(std::string uri) {
  const auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return uri;
  const auto authority = scheme_end + 3;
  const auto path = uri.find('/', authority);
  const auto at = uri.rfind('@', path == std::string::npos ? std::string::npos : path);
  if (at == std::string::npos || at < authority) return uri;
  const auto colon = uri.find(':', authority);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.replace(colon + 1, at - colon - 1, "***");
}

std::string redact_query(std::string uri) {
  const auto question = uri.find('?');
  if (question == std::string::npos) return uri;
  auto params = split(std::string_view(uri).substr(question + 1), '&');
  for (auto& param : params)
    if (param.substr(0, param.find('=')) == "password") param = "password=***";
  return uri.substr(0, question) + "?" + join(params, '&');
}

}  // namespace

ConnectionSettings parse_database_url(std::string_view url, const EnvLookup& env) {
  if (!url.starts_with("postgresql://") && !url.starts_with("postgres://"))
    throw std::invalid_argument("state_db: a PostgreSQL database is a postgresql:// or postgres:// URI");
  ConnectionSettings settings = take_password_file(expand(url, env));
  validate_with_libpq(settings.conninfo);
  return settings;
}

std::string redacted(const ConnectionSettings& settings) {
  return redact_query(redact_userinfo(settings.conninfo));
}

std::string read_password_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read the database password from " + file.string() + ": cannot open it");
  std::string line;
  if (!std::getline(in, line) || line.empty())
    throw std::runtime_error("cannot read the database password from " + file.string() + ": its first line is empty");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace apsis::pg
