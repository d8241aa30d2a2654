#include "net.h"

#include <catch2/catch.hpp>

using namespace tripline;

TEST_CASE("net: CIDR ranges match IPv4, IPv6 and mapped addresses") {
  auto v4 = *Cidr::parse("10.1.0.0/16");
  CHECK(v4.contains("10.1.200.3"));
  CHECK_FALSE(v4.contains("10.2.0.1"));
  CHECK(v4.contains("::ffff:10.1.0.9"));
  CHECK_FALSE(v4.contains("2001:db8::1"));
  auto v6 = *Cidr::parse("2001:db8::/32");
  CHECK(v6.contains("2001:db8:ffff::1"));
  CHECK_FALSE(v6.contains("2001:db9::1"));
  auto host = *Cidr::parse("192.0.2.7");
  CHECK(host.contains("192.0.2.7"));
  CHECK_FALSE(host.contains("192.0.2.8"));
  CHECK(Cidr::parse("0.0.0.0/0")->contains("203.0.113.9"));
  CHECK(Cidr::parse("10.0.0.0/12")->contains("10.15.255.255"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/12")->contains("10.16.0.0"));
  for (const char* bad : {"10.0.0.0/33", "nonsense", "10.0.0.0/", "::/129", "1.2.3.4/-1"})
    CHECK_FALSE(Cidr::parse(bad));
}

TEST_CASE("net: X-Forwarded-For is believed only from trusted proxies") {
  std::vector<Cidr> proxies = {*Cidr::parse("127.0.0.1"), *Cidr::parse("10.0.0.0/8")};
  CHECK(caller_address("203.0.113.5", std::string("198.51.100.1"), proxies) == "203.0.113.5");
  CHECK(caller_address("127.0.0.1", std::string("198.51.100.1"), proxies) == "198.51.100.1");
  // The right-most untrusted hop wins; a client cannot prepend its own claim.
  CHECK(caller_address("127.0.0.1", std::string("6.6.6.6, 198.51.100.1, 10.0.0.4"), proxies) ==
        "198.51.100.1");
  CHECK(caller_address("127.0.0.1", std::string("garbage"), proxies) == "127.0.0.1");
  CHECK(caller_address("127.0.0.1", std::nullopt, proxies) == "127.0.0.1");
  CHECK(caller_address("127.0.0.1", std::string("198.51.100.1"), {}) == "127.0.0.1");
  CHECK(caller_address("::ffff:127.0.0.1", std::string("2001:db8::1"), proxies) == "2001:db8::1");
}
