// Addresses: CIDR ranges and the caller's address behind trusted proxies.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tripline {

class Cidr {
 public:
  // "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(std::string_view address) const;

 private:
  bool v6_ = false;
  std::array<unsigned char, 16> net_{};
  int prefix_ = 0;
};

// "1.2.3.4", "::1" or "::ffff:1.2.3.4" (as an IPv4 address): canonical text, or nullopt.
std::optional<std::string> canonical_ip(std::string_view text);

// The address a request came from: the peer, unless the peer is a trusted proxy, in which case
// the right-most X-Forwarded-For entry that is not itself a trusted proxy.
std::string caller_address(std::string_view peer, const std::optional<std::string>& forwarded_for,
                           const std::vector<Cidr>& trusted_proxies);

}  // namespace tripline
