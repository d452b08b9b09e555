#include "pg/connect_parameters.hpp"

#include "pg/error.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <libpq-fe.h>

#include <memory>

namespace apsis::pg {
namespace {

namespace asio = boost::asio;

bool is_socket(std::string_view host) { return host.empty() || host.front() == '/' || host.front() == '@'; }

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + parts[i];
  return out;
}

asio::awaitable<std::vector<std::string>> resolve(asio::ip::tcp::resolver& resolver, const std::string& host) {
  try {
    const auto results = co_await resolver.async_resolve(host, "", asio::use_awaitable);
    std::vector<std::string> addresses;
    for (const auto& entry : results) addresses.push_back(entry.endpoint().address().to_string());
    co_return addresses;
  } catch (const boost::system::system_error& error) {
    throw Error("cannot resolve the database host " + host + ": " + error.code().message(), "", true);
  }
}

}  // namespace

ConnectParameters ConnectParameters::from_conninfo(const std::string& conninfo) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfoParse(conninfo.c_str(), &error),
                                                                       &PQconninfoFree);
  std::unique_ptr<char, decltype(&PQfreemem)> message(error, &PQfreemem);
  if (!options) throw Error(std::string("libpq rejects the database URI: ") + (error ? error : "out of memory"), "", true);
  ConnectParameters parameters;
  for (auto* option = options.get(); option->keyword; ++option)
    if (option->val) parameters.entries_.emplace_back(option->keyword, option->val);
  return parameters;
}

std::optional<std::string> ConnectParameters::get(std::string_view keyword) const {
  for (const auto& [key, value] : entries_)
    if (key == keyword) return value;
  return std::nullopt;
}

void ConnectParameters::set(const std::string& keyword, std::string value) {
  for (auto& [key, existing] : entries_)
    if (key == keyword) {
      existing = std::move(value);
      return;
    }
  entries_.emplace_back(keyword, std::move(value));
}

const char* const* ConnectParameters::keywords() {
  keywords_.clear();
  for (const auto& entry : entries_) keywords_.push_back(entry.first.c_str());
  keywords_.push_back(nullptr);
  return keywords_.data();
}

const char* const* ConnectParameters::values() {
  values_.clear();
  for (const auto& entry : entries_) values_.push_back(entry.second.c_str());
  values_.push_back(nullptr);
  return values_.data();
}

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const auto comma = list.find(',', start);
    parts.emplace_back(list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return parts;
    start = comma + 1;
  }
}

HostLists expand_hosts(const std::vector<ResolvedHost>& hosts, std::string_view ports) {
  const auto port_list = ports.empty() ? std::vector<std::string>{} : split_list(ports);
  const bool port_per_host = port_list.size() > 1 && port_list.size() == hosts.size();
  std::vector<std::string> host_out, address_out, port_out;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    // An empty hostaddr entry makes libpq use the host entry as it is: right for sockets.
    const auto addresses = hosts[i].addresses.empty() ? std::vector<std::string>{""} : hosts[i].addresses;
    for (const auto& address : addresses) {
      host_out.push_back(hosts[i].host);
      address_out.push_back(address);
      if (port_per_host) port_out.push_back(port_list[i]);
    }
  }
  return {join(host_out), join(address_out), port_per_host ? join(port_out) : std::string(ports)};
}

asio::awaitable<ConnectParameters> prepare_connect(const ConnectionSettings& settings) {
  auto parameters = ConnectParameters::from_conninfo(settings.conninfo);
  // Without an explicit application_name, pg_stat_activity still says who holds the session.
  if (!parameters.get("fallback_application_name")) parameters.set("fallback_application_name", "apsis-exportd");
  if (settings.password_file) {
    try {
      parameters.set("password", read_password_file(*settings.password_file));
    } catch (const std::runtime_error& error) {
      throw Error(error.what(), "", false);  // a setup mistake, not worth retrying
    }
  }
  const auto host = parameters.get("host");
  if (!host || parameters.get("hostaddr")) co_return parameters;  // libpq's default socket, or addresses given
  std::vector<ResolvedHost> hosts;
  asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
  bool any_name = false;
  for (auto& name : split_list(*host)) {
    std::vector<std::string> addresses;
    if (!is_socket(name)) addresses = co_await resolve(resolver, name);
    any_name = any_name || !addresses.empty();
    hosts.push_back({std::move(name), std::move(addresses)});
  }
  if (!any_name) co_return parameters;
  const auto lists = expand_hosts(hosts, parameters.get("port").value_or(""));
  parameters.set("host", lists.host);
  parameters.set("hostaddr", lists.hostaddr);
  if (!lists.port.empty()) parameters.set("port", lists.port);
  co_return parameters;
}

}  // namespace apsis::pg
