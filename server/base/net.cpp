#include "net.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace tripline {

namespace {
// Parses into 16 bytes; IPv4 (and IPv4-mapped IPv6) as v6=false in the first 4 bytes.
bool parse_ip(std::string_view text, std::array<unsigned char, 16>* out, bool* v6) {
  std::string s(text);
  out->fill(0);
  if (inet_pton(AF_INET, s.c_str(), out->data()) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out->data()) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out->data(), kMapped, 12) == 0) {
      std::memmove(out->data(), out->data() + 12, 4);
      std::memset(out->data() + 4, 0, 12);
      *v6 = false;
    } else {
      *v6 = true;
    }
    return true;
  }
  return false;
}
}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  auto slash = text.find('/');
  if (!parse_ip(text.substr(0, slash), &c.net_, &c.v6_)) return std::nullopt;
  int max = c.v6_ ? 128 : 32;
  c.prefix_ = max;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), c.prefix_);
    if (ec != std::errc() || end != p.data() + p.size() || c.prefix_ < 0 || c.prefix_ > max)
      return std::nullopt;
  }
  return c;
}

bool Cidr::contains(std::string_view address) const {
  std::array<unsigned char, 16> a{};
  bool v6 = false;
  if (!parse_ip(address, &a, &v6) || v6 != v6_) return false;
  int full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(a.data(), net_.data(), full) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (net_[full] & mask);
}

std::optional<std::string> canonical_ip(std::string_view text) {
  std::array<unsigned char, 16> a{};
  bool v6 = false;
  if (!parse_ip(text, &a, &v6)) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, a.data(), buf, sizeof buf);
  return std::string(buf);
}

std::string caller_address(std::string_view peer, const std::optional<std::string>& forwarded_for,
                           const std::vector<Cidr>& trusted) {
  auto is_trusted = [&](std::string_view ip) {
    for (const auto& c : trusted)
      if (c.contains(ip)) return true;
    return false;
  };
  std::string caller = canonical_ip(peer).value_or(std::string(peer));
  if (!forwarded_for || trusted.empty() || !is_trusted(caller)) return caller;
  std::string_view list = *forwarded_for;
  while (!list.empty()) {
    auto comma = list.rfind(',');
    std::string_view entry = comma == std::string_view::npos ? list : list.substr(comma + 1);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(0, comma);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    auto ip = canonical_ip(entry);
    if (!ip) return caller;  // garbage in the chain: trust nothing beyond the last good hop
    caller = *ip;
    if (!is_trusted(caller)) return caller;
  }
  return caller;
}

}  // namespace tripline
