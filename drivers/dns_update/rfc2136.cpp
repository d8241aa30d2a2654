#include "rfc2136.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace tripline::dns_update {

namespace {

using ResolverPtr = std::unique_ptr<ldns_resolver, decltype(&ldns_resolver_deep_free)>;
using PacketPtr = std::unique_ptr<ldns_pkt, decltype(&ldns_pkt_free)>;
using RrListPtr = std::unique_ptr<ldns_rr_list, decltype(&ldns_rr_list_deep_free)>;
using RdfPtr = std::unique_ptr<ldns_rdf, decltype(&ldns_rdf_deep_free)>;

constexpr uint16_t kFudgeSeconds = 300;  // RFC 8945 §10
constexpr int kBadSig = 16, kBadKey = 17, kBadTime = 18;

ldns_rr_type rr_type(RecordType t) {
  switch (t) {
    case RecordType::kA:
      return LDNS_RR_TYPE_A;
    case RecordType::kAAAA:
      return LDNS_RR_TYPE_AAAA;
    case RecordType::kCNAME:
      return LDNS_RR_TYPE_CNAME;
    case RecordType::kTXT:
      return LDNS_RR_TYPE_TXT;
  }
  return LDNS_RR_TYPE_A;
}

std::string fqdn(const std::string& name) { return name + "."; }

std::string algorithm_dname(const std::string& a) {
  return a == "hmac-md5" ? "hmac-md5.sig-alg.reg.int." : a + ".";
}

const char* rcode_name(int rcode) {
  static const char* kNames[] = {"NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                 "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE"};
  return rcode >= 0 && rcode <= 10 ? kNames[rcode] : "an unknown code";
}

// TXT bytes as a JSON-safe string: kept as is when they are valid UTF-8, else bytes >= 0x80 as
// \DDD (zone-file style), so a record someone else wrote cannot break the recorded plan.
std::string txt_text(const std::string& raw) {
  try {
    (void)nlohmann::json(raw).dump();  // throws on invalid UTF-8, as the store's dump would
    return raw;
  } catch (const nlohmann::json::exception&) {
  }
  std::string out;
  for (unsigned char c : raw) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      snprintf(buf, sizeof buf, "\\%03u", c);
      out += buf;
    }
  }
  return out;
}

// The rdata of `rr` in canonical_value() form.
std::string rdata_text(const ldns_rr* rr, RecordType type) {
  switch (type) {
    case RecordType::kA:
    case RecordType::kAAAA: {
      const ldns_rdf* rdf = ldns_rr_rdf(rr, 0);
      if (!rdf) return {};
      char buf[INET6_ADDRSTRLEN] = {};
      int family = type == RecordType::kA ? AF_INET : AF_INET6;
      size_t want = type == RecordType::kA ? 4 : 16;
      if (ldns_rdf_size(rdf) != want || !inet_ntop(family, ldns_rdf_data(rdf), buf, sizeof buf))
        return {};
      return buf;
    }
    case RecordType::kCNAME: {
      const ldns_rdf* rdf = ldns_rr_rdf(rr, 0);
      if (!rdf) return {};
      char* s = ldns_rdf2str(rdf);
      std::string out = s ? normalize_name(s) : "";
      free(s);
      return out;
    }
    case RecordType::kTXT: {
      std::string raw;
      for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
        const ldns_rdf* rdf = ldns_rr_rdf(rr, i);
        const uint8_t* d = ldns_rdf_data(rdf);
        size_t size = ldns_rdf_size(rdf);
        if (size == 0) continue;
        size_t len = std::min<size_t>(d[0], size - 1);
        raw.append(reinterpret_cast<const char*>(d + 1), len);
      }
      return txt_text(raw);
    }
  }
  return {};
}

// host (a literal or a name) -> the first address getaddrinfo answers, with `port`.
bool resolve(const std::string& host, uint16_t port, sockaddr_storage* out, socklen_t* len,
             std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0 || !res) {
    *why = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

timeval to_timeval(std::chrono::milliseconds ms) {
  if (ms.count() < 1) ms = std::chrono::milliseconds(1);
  timeval tv;
  tv.tv_sec = ms.count() / 1000;
  tv.tv_usec = (ms.count() % 1000) * 1000;
  return tv;
}

// Why no reply came. kRefused: the host answered the connection with RST (nothing listens on
// the port), known at once; the others took up to the timeout.
enum class NoReply { kNone, kRefused, kTimeout, kClosed, kOther };

// The reply to one message, or why none came.
struct Exchange {
  PacketPtr reply{nullptr, &ldns_pkt_free};
  NoReply no_reply = NoReply::kNone;
  std::string failure;         // set when no reply came: what happened
  bool failure_final = false;  // e.g. a secret ldns cannot sign with
  bool signed_reply = false;   // the reply carries a TSIG record
  bool verified = false;       // ... whose MAC verifies with our key
};

}  // namespace

Rfc2136Client::Rfc2136Client(const Config& config, std::chrono::milliseconds timeout)
    : config_(config), timeout_(timeout) {}

namespace {

// What an extra query learned about the zone, asked only to tell apart answers that look alike
// (docs/dns.md "Telling the answers apart").
enum class ZoneProbe { kUnknown, kServed, kNotServed };

class Session {
 public:
  Session(const Config& c, std::chrono::milliseconds timeout) : c_(c), timeout_(timeout) {}

  // Signs `query` (with `sign`; a query directly, an update through ldns_update_pkt_tsig_add) and
  // exchanges it over one TCP connection of our own, so that a refused connection is told
  // apart from silence (ldns_send reports both as a network error).
  Exchange send(ldns_pkt* query, bool is_update, bool sign = true) {
    Exchange x;
    ResolverPtr r(ldns_resolver_new(), &ldns_resolver_deep_free);
    if (!r) {
      x.failure = "ldns_resolver_new failed";
      x.no_reply = NoReply::kOther;
      return x;
    }
    ldns_resolver_set_tsig_keyname(r.get(), fqdn(c_.tsig_key_name).c_str());
    ldns_resolver_set_tsig_algorithm(r.get(), algorithm_dname(c_.tsig_algorithm).c_str());
    ldns_resolver_set_tsig_keydata(r.get(), c_.tsig_secret.c_str());
    ldns_pkt_set_random_id(query);
    if (sign) {
      ldns_status s = is_update
                          ? ldns_update_pkt_tsig_add(query, r.get())
                          : ldns_pkt_tsig_sign(query, ldns_resolver_tsig_keyname(r.get()),
                                               ldns_resolver_tsig_keydata(r.get()), kFudgeSeconds,
                                               ldns_resolver_tsig_algorithm(r.get()), nullptr);
      if (s != LDNS_STATUS_OK) {
        x.failure = std::string("cannot sign with TSIG key \"") + c_.tsig_key_name +
                    "\": " + ldns_get_errorstr_by_id(s) + "; check tsig_secret and tsig_algorithm";
        x.failure_final = true;
        x.no_reply = NoReply::kOther;
        return x;
      }
    }
    using Buffer = std::unique_ptr<ldns_buffer, decltype(&ldns_buffer_free)>;
    Buffer wire(ldns_buffer_new(LDNS_MAX_PACKETLEN), &ldns_buffer_free);
    if (!wire || ldns_pkt2buffer_wire(wire.get(), query) != LDNS_STATUS_OK) {
      x.failure = "cannot encode the message";
      x.failure_final = true;
      x.no_reply = NoReply::kOther;
      return x;
    }

    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    auto left = [&] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
    };
    sockaddr_storage to{};
    socklen_t to_len = 0;
    if (!resolve(c_.server_host, c_.server_port, &to, &to_len, &x.failure)) {
      x.no_reply = NoReply::kOther;
      return x;
    }
    Fd fd(::socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
      x.failure = std::string("cannot open a socket: ") + std::strerror(errno);
      x.no_reply = NoReply::kOther;
      return x;
    }
    int err = 0;
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), to_len) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd.get(), POLLOUT, 0};
        int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left().count())));
        if (n == 0) {
          err = ETIMEDOUT;
        } else {
          socklen_t len = sizeof err;
          if (n < 0 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    if (err != 0) {
      x.no_reply = err == ECONNREFUSED ? NoReply::kRefused
                   : err == ETIMEDOUT  ? NoReply::kTimeout
                                       : NoReply::kOther;
      x.failure = std::strerror(err);
      return x;
    }
    // ldns_tcp_send_query writes with a plain send(): bound it too.
    int flags = ::fcntl(fd.get(), F_GETFL);
    (void)::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    timeval send_tv = to_timeval(left());
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_tv, sizeof send_tv);
    if (ldns_tcp_send_query(wire.get(), fd.get(), &to, to_len) <= 0) {
      x.no_reply = NoReply::kClosed;
      x.failure = "the connection failed while sending";
      return x;
    }
    // Wait for the first byte here, so that silence (a timeout) is told apart from a close.
    pollfd readable{fd.get(), POLLIN, 0};
    if (::poll(&readable, 1, static_cast<int>(std::max<int64_t>(0, left().count()))) == 0) {
      x.no_reply = NoReply::kTimeout;
      x.failure = "no answer";
      return x;
    }
    size_t size = 0;
    std::unique_ptr<uint8_t, decltype(&free)> answer(
        ldns_tcp_read_wire_timeout(fd.get(), &size, to_timeval(left())), &free);
    if (!answer) {
      x.no_reply = NoReply::kClosed;
      x.failure = "closed";
      return x;
    }
    ldns_pkt* reply = nullptr;
    if (ldns_wire2pkt(&reply, answer.get(), size) != LDNS_STATUS_OK || !reply) {
      x.no_reply = NoReply::kOther;
      x.failure = "the answer is not a DNS message";
      return x;
    }
    x.reply.reset(reply);
    if (ldns_pkt_id(reply) != ldns_pkt_id(query)) {
      x.reply.reset();
      x.no_reply = NoReply::kOther;
      x.failure = "the answer's ID does not match the message's";
      return x;
    }
    x.signed_reply = ldns_pkt_tsig(reply) != nullptr;
    if (sign && x.signed_reply) {
      const ldns_rr* our_tsig = ldns_pkt_tsig(query);
      x.verified = ldns_pkt_tsig_verify(
          reply, answer.get(), size, ldns_resolver_tsig_keyname(r.get()),
          ldns_resolver_tsig_keydata(r.get()), our_tsig ? ldns_rr_rdf(our_tsig, 3) : nullptr);
    }
    return x;
  }

  // Whether the server answers the zone's SOA authoritatively, to a signed query or not.
  // `verified` tells, for a signed one, whether the answer verified with our key.
  ZoneProbe probe_zone(bool sign, bool* verified = nullptr) {
    PacketPtr q(ldns_pkt_query_new(ldns_dname_new_frm_str(fqdn(c_.zone).c_str()), LDNS_RR_TYPE_SOA,
                                   LDNS_RR_CLASS_IN, 0),
                &ldns_pkt_free);
    if (!q) return ZoneProbe::kUnknown;
    Exchange x = send(q.get(), false, sign);
    if (verified) *verified = x.verified;
    if (!x.reply) return ZoneProbe::kUnknown;
    int rcode = ldns_pkt_get_rcode(x.reply.get());
    if (rcode == LDNS_RCODE_SERVFAIL) return ZoneProbe::kUnknown;
    if (sign && !x.verified) return ZoneProbe::kUnknown;  // the key was rejected: no verdict
    return rcode == LDNS_RCODE_NOERROR && has_soa(x.reply.get()) && ldns_pkt_aa(x.reply.get())
               ? ZoneProbe::kServed
               : ZoneProbe::kNotServed;
  }

  bool has_soa(const ldns_pkt* reply) const {
    bool soa = false;
    const ldns_rr_list* answer = ldns_pkt_answer(reply);
    for (size_t i = 0; answer && i < ldns_rr_list_rr_count(answer); ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(answer, i);
      char* owner = ldns_rdf2str(ldns_rr_owner(rr));
      if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && owner && normalize_name(owner) == c_.zone)
        soa = true;
      free(owner);
    }
    return soa;
  }

  // Whether the name holds a CNAME (signed query): PowerDNS refuses other data beside one.
  bool has_cname() {
    PacketPtr q(ldns_pkt_query_new(ldns_dname_new_frm_str(fqdn(c_.name).c_str()),
                                   LDNS_RR_TYPE_CNAME, LDNS_RR_CLASS_IN, 0),
                &ldns_pkt_free);
    if (!q) return false;
    Exchange x = send(q.get(), false);
    if (!x.reply || !x.verified) return false;
    const ldns_rr_list* answer = ldns_pkt_answer(x.reply.get());
    for (size_t i = 0; answer && i < ldns_rr_list_rr_count(answer); ++i)
      if (ldns_rr_get_type(ldns_rr_list_rr(answer, i)) == LDNS_RR_TYPE_CNAME) return true;
    return false;
  }

  // Turns the exchange into an Answer whose message tells the operator what to fix. The same
  // rcode means different things at BIND, Knot and PowerDNS (docs/dns.md): what decides is
  // whether the answer carries a TSIG record, its TSIG error, and, where two causes still look
  // alike, one more query that tells them apart.
  Rfc2136Client::Answer classify(const Exchange& x, bool is_update) {
    using Error = Rfc2136Client::Error;
    Rfc2136Client::Answer a;
    const std::string& server = c_.server;
    if (!x.reply) {
      a.error = x.failure_final ? Error::kRejected : Error::kUnreachable;
      a.field = x.failure_final ? "tsig_secret" : "server";
      switch (x.no_reply) {
        case NoReply::kRefused:
          a.message = "connection refused by " + server +
                      ": nothing listens on that port (the server is down, or on another port)";
          break;
        case NoReply::kTimeout:
          a.message = "no answer from " + server + " over TCP within " +
                      std::to_string(timeout_.count()) +
                      " ms: the server is down, unreachable or filtered";
          break;
        case NoReply::kClosed:
          a.message = server +
                      " closed the TCP connection before a whole answer came: the server may be "
                      "overloaded, or not a DNS server";
          break;
        default:
          a.message = x.failure_final ? x.failure : "no answer from " + server + ": " + x.failure;
      }
      return a;
    }
    a.rcode = ldns_pkt_get_rcode(x.reply.get());
    a.signed_reply = x.signed_reply;
    if (const ldns_rr* t = ldns_pkt_tsig(x.reply.get()); t && ldns_rr_rdf(t, 5))
      a.tsig_error = ldns_rdf2native_int16(ldns_rr_rdf(t, 5));
    const std::string key = "\"" + c_.tsig_key_name + "\"";
    const std::string what = is_update ? "update" : "query";
    a.error = Error::kRejected;

    // 1. A TSIG error: the server says what it thinks of the key (RFC 8945 §5.2).
    if (a.tsig_error == kBadSig) {
      a.field = "tsig_secret";
      a.message = server + " rejected the TSIG signature (" + rcode_name(a.rcode) +
                  "/BADSIG): the secret of key " + key +
                  " does not match the server's; check tsig_secret and tsig_algorithm";
      return a;
    }
    if (a.tsig_error == kBadTime) {
      a.field = "server";
      a.message = server + " rejected the signature's time (" + std::string(rcode_name(a.rcode)) +
                  "/BADTIME): this host's clock and the server's differ by more than 5 minutes";
      return a;
    }
    if (a.tsig_error == kBadKey) {
      a.field = "tsig_key_name";
      bool known = false;
      // Knot answers BADKEY also for a key it knows whose ACL does not allow this update; a
      // signed query that verifies tells the two apart.
      if (is_update) (void)probe_zone(true, &known);
      if (known)
        a.message = server + " refused the update with " + rcode_name(a.rcode) +
                    "/BADKEY although it knows key " + key +
                    " (a signed query verifies): the zone's ACL does not allow this key to "
                    "update zone " +
                    c_.zone +
                    " (Knot answers so); allow the key on the server, or use one "
                    "that is allowed";
      else
        a.message = server + " does not know TSIG key " + key + " with algorithm " +
                    c_.tsig_algorithm + " (" + rcode_name(a.rcode) +
                    "/BADKEY), or no ACL of zone " + c_.zone +
                    " names the key (Knot answers so even to queries); check tsig_key_name and "
                    "tsig_algorithm, and the zone's ACL on the server";
      return a;
    }
    if (a.tsig_error != 0) {
      a.field = "tsig_secret";
      a.message = server + " answered TSIG error " + std::to_string(a.tsig_error) + " (" +
                  rcode_name(a.rcode) + ") to key " + key;
      return a;
    }
    // 2. A TSIG record that does not verify: the answer cannot be trusted.
    if (x.signed_reply && !x.verified) {
      a.field = "tsig_secret";
      a.message = "the answer from " + server + " failed TSIG verification with key " + key +
                  "; check tsig_secret and tsig_algorithm";
      return a;
    }

    switch (a.rcode) {
      case LDNS_RCODE_NOERROR:
      case LDNS_RCODE_NXDOMAIN:
        if (is_update && a.rcode == LDNS_RCODE_NXDOMAIN) break;
        if (!x.signed_reply) {
          // An answer to a signed message must be signed (RFC 8945 §5.3); an unsigned one
          // may come from anyone on the path.
          a.field = "tsig_secret";
          a.message = server + " answered the signed " + what +
                      " without a TSIG record: the answer cannot be trusted";
          return a;
        }
        a.error = Error::kNone;
        return a;
      case LDNS_RCODE_SERVFAIL:
        a.error = Error::kServer;
        a.field = "zone";
        a.message = server + " answered SERVFAIL for zone " + c_.zone +
                    ": the zone may be loading or broken on the server";
        return a;
      case LDNS_RCODE_NOTAUTH:
      case LDNS_RCODE_REFUSED:
        if (x.signed_reply) return signed_no(a, is_update);
        return unsigned_no(a, is_update);
      case LDNS_RCODE_NOTZONE:
        a.field = "record.name";
        a.message = c_.name + " is not inside zone " + c_.zone + " as " + server +
                    " sees it (NOTZONE); check record.name and zone";
        return a;
      case LDNS_RCODE_NOTIMPL:
        a.field = "server";
        a.message = server + " does not implement dynamic update (NOTIMP)";
        return a;
      default:
        break;
    }
    a.field = "zone";
    a.message = server + " rejected the " + what + " (" + rcode_name(a.rcode) + ")";
    return a;
  }

 private:
  // NOTAUTH or REFUSED in an answer signed with our key: the key is fine, the server says no.
  Rfc2136Client::Answer signed_no(Rfc2136Client::Answer a, bool is_update) {
    const std::string& server = c_.server;
    const std::string key = "\"" + c_.tsig_key_name + "\"";
    if (a.rcode == LDNS_RCODE_NOTAUTH || !is_update) {
      // BIND and PowerDNS: NOTAUTH to an update, REFUSED to a query, for a zone not served.
      a.field = "zone";
      a.message = server + " does not serve zone " + c_.zone + " (" + rcode_name(a.rcode) +
                  ", signed with key " + key + "); check server and zone";
      return a;
    }
    // REFUSED to an update: the zone is not served (PowerDNS, when it checks the sender's
    // address first), the policy, or (PowerDNS) a CNAME beside other data.
    if (probe_zone(true) == ZoneProbe::kNotServed) {
      a.field = "zone";
      a.message = server + " refused the update (REFUSED, signed with key " + key +
                  ") and does not serve zone " + c_.zone + "; check server and zone";
      return a;
    }
    if (c_.type != RecordType::kCNAME && has_cname()) {
      a.field = "record.name";
      a.message = server + " refused the update (REFUSED): " + c_.name +
                  " holds a CNAME, and a name with a CNAME can hold no other record; remove "
                  "the CNAME or use another name";
      return a;
    }
    a.field = "tsig_key_name";
    a.message = server + " refused the update (REFUSED): key " + key + " may not change " +
                c_.name + " " + to_string(c_.type) + " in zone " + c_.zone +
                ", or the zone takes no updates; check the zone's update policy on the server "
                "(BIND update-policy or allow-update, PowerDNS TSIG-ALLOW-DNSUPDATE)" +
                (c_.type == RecordType::kCNAME
                     ? ", or, at PowerDNS, the name holds other records beside which a CNAME "
                       "cannot go"
                     : "");
    return a;
  }

  // NOTAUTH or REFUSED without a TSIG record: PowerDNS's answer to a key it rejects (bare
  // NOTAUTH to a query, bare REFUSED to an update), and Knot's and BIND's to a zone they do not
  // serve (bare NOTAUTH to an update at Knot, REFUSED to a query). An unsigned SOA query, and
  // for an update a signed one, tell which.
  Rfc2136Client::Answer unsigned_no(Rfc2136Client::Answer a, bool is_update) {
    const std::string& server = c_.server;
    const std::string key = "\"" + c_.tsig_key_name + "\"";
    const std::string rc = rcode_name(a.rcode);
    ZoneProbe zone = probe_zone(false);
    if (zone == ZoneProbe::kNotServed) {
      a.field = "zone";
      a.message = server + " does not serve zone " + c_.zone + " (" + rc +
                  " without a TSIG record, and no authoritative SOA for the zone); check server "
                  "and zone";
      return a;
    }
    if (zone == ZoneProbe::kServed) {
      bool key_ok = false;
      if (is_update) (void)probe_zone(true, &key_ok);
      if (key_ok) {
        a.field = "server";
        a.message = server + " refused the update (" + rc + " without a TSIG record) though key " +
                    key +
                    " verifies on queries: it takes no updates from this address (PowerDNS "
                    "allow-dnsupdate-from, ALLOW-DNSUPDATE-FROM) or has updates turned off";
        return a;
      }
      a.field = "tsig_secret";
      a.other_field = "tsig_key_name";
      a.message = server + " serves zone " + c_.zone + " but rejected key " + key + " (" + rc +
                  " without a TSIG record, as PowerDNS answers an unknown key or a wrong secret): "
                  "check tsig_key_name, tsig_secret and tsig_algorithm";
      return a;
    }
    a.field = "zone";
    a.other_field = "tsig_secret";
    a.message = server + " answered " + rc + " without a TSIG record: either it rejected key " +
                key +
                " (PowerDNS answers so to an unknown key or a wrong secret) or it is not "
                "authoritative for zone " +
                c_.zone + "; check zone, tsig_key_name and tsig_secret";
    return a;
  }

  const Config& c_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

namespace {

Rfc2136Client::Answer rejected(std::string message, std::string field) {
  Rfc2136Client::Answer a;
  a.error = Rfc2136Client::Error::kRejected;
  a.message = std::move(message);
  a.field = std::move(field);
  return a;
}

// Appends `v` as rdata of `type` to `rr`; false when ldns cannot encode it.
bool push_value(ldns_rr* rr, RecordType type, const std::string& v) {
  // ldns_rr_push_rdf would store a null rdf (what a value ldns cannot parse becomes) as is.
  bool ok = true;
  auto push = [&](ldns_rdf* rdf) {
    if (!rdf || !ldns_rr_push_rdf(rr, rdf)) {
      if (rdf) ldns_rdf_deep_free(rdf);
      ok = false;
    }
  };
  switch (type) {
    case RecordType::kA:
      push(ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, v.c_str()));
      break;
    case RecordType::kAAAA:
      push(ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, v.c_str()));
      break;
    case RecordType::kCNAME:
      push(ldns_dname_new_frm_str(fqdn(v).c_str()));
      break;
    case RecordType::kTXT: {
      // Character-strings hold at most 255 bytes; longer values are split, as zone files do.
      size_t pos = 0;
      do {
        std::string chunk = v.substr(pos, 255);
        std::string wire(1, static_cast<char>(chunk.size()));
        wire += chunk;
        push(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, wire.size(), wire.data()));
        pos += 255;
      } while (ok && pos < v.size());
      break;
    }
  }
  return ok;
}

// A value no record set of the type holds in practice, for check_update()'s no-op delete.
std::string probe_value(RecordType type) {
  switch (type) {
    case RecordType::kA:
      return "0.0.0.0";
    case RecordType::kAAAA:
      return "::";
    case RecordType::kCNAME:
      return "tripline-permission-probe.invalid";
    case RecordType::kTXT:
      return "tripline permission probe: deletes nothing";
  }
  return {};
}

}  // namespace

Rfc2136Client::Answer Rfc2136Client::read(RecordSet* out) const {
  *out = RecordSet{};
  Session session(config_, timeout_);
  PacketPtr q(ldns_pkt_query_new(ldns_dname_new_frm_str(fqdn(config_.name).c_str()),
                                 rr_type(config_.type), LDNS_RR_CLASS_IN, 0),
              &ldns_pkt_free);
  if (!q) return rejected("cannot build a query for " + config_.name, "record.name");
  Exchange x = session.send(q.get(), false);
  Answer a = session.classify(x, false);
  if (a.error != Error::kNone) return a;
  const ldns_rr_list* answer = ldns_pkt_answer(x.reply.get());
  for (size_t i = 0; answer && i < ldns_rr_list_rr_count(answer); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answer, i);
    if (ldns_rr_get_type(rr) != rr_type(config_.type)) continue;
    char* owner = ldns_rdf2str(ldns_rr_owner(rr));
    bool mine = owner && normalize_name(owner) == config_.name;
    free(owner);
    if (!mine) continue;
    out->exists = true;
    out->ttl = ldns_rr_ttl(rr);
    out->values.push_back(rdata_text(rr, config_.type));
  }
  std::sort(out->values.begin(), out->values.end());  // servers rotate RRsets; plans should not
  return a;
}

Rfc2136Client::Answer Rfc2136Client::check_zone() const {
  Session session(config_, timeout_);
  PacketPtr q(ldns_pkt_query_new(ldns_dname_new_frm_str(fqdn(config_.zone).c_str()),
                                 LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN, 0),
              &ldns_pkt_free);
  if (!q) return rejected("cannot build a query for " + config_.zone, "zone");
  Exchange x = session.send(q.get(), false);
  Answer a = session.classify(x, false);
  if (a.error != Error::kNone) return a;
  bool soa = session.has_soa(x.reply.get());
  if (!soa || !ldns_pkt_aa(x.reply.get())) {
    a.error = Error::kRejected;
    a.field = "zone";
    a.message = config_.server + " does not serve zone " + config_.zone +
                " authoritatively (no SOA record at its apex); check server and zone";
  }
  return a;
}

Rfc2136Client::Answer Rfc2136Client::replace(const std::vector<std::string>& values,
                                             int64_t ttl) const {
  RdfPtr owner(ldns_dname_new_frm_str(fqdn(config_.name).c_str()), &ldns_rdf_deep_free);
  if (!owner) return rejected("cannot encode the name " + config_.name, "record.name");
  const ldns_rr_type type = rr_type(config_.type);
  RrListPtr updates(ldns_rr_list_new(), &ldns_rr_list_deep_free);
  auto add_rr = [&](ldns_rr_class cls, uint32_t rr_ttl) -> ldns_rr* {
    ldns_rr* rr = ldns_rr_new();
    ldns_rr_set_owner(rr, ldns_rdf_clone(owner.get()));
    ldns_rr_set_type(rr, type);
    ldns_rr_set_class(rr, cls);
    ldns_rr_set_ttl(rr, rr_ttl);
    ldns_rr_list_push_rr(updates.get(), rr);
    return rr;
  };
  // RFC 2136 §2.5.2: class ANY, no rdata, TTL 0 deletes the whole RRset.
  add_rr(LDNS_RR_CLASS_ANY, 0);
  for (const std::string& v : values) {
    ldns_rr* rr = add_rr(LDNS_RR_CLASS_IN, static_cast<uint32_t>(ttl));
    bool ok = push_value(rr, config_.type, v);
    if (!ok)
      return rejected("cannot encode \"" + v + "\" as " + to_string(config_.type) + " rdata",
                      "value");
  }
  return send_update(updates.get());
}

Rfc2136Client::Answer Rfc2136Client::send_update(ldns_rr_list* updates) const {
  PacketPtr update(ldns_update_pkt_new(ldns_dname_new_frm_str(fqdn(config_.zone).c_str()),
                                       LDNS_RR_CLASS_IN, nullptr, updates, nullptr),
                   &ldns_pkt_free);
  if (!update) return rejected("cannot build the update message", "zone");
  ldns_pkt_set_rd(update.get(), false);
  Session session(config_, timeout_);
  Exchange x = session.send(update.get(), true);
  return session.classify(x, true);
}

Rfc2136Client::Answer Rfc2136Client::check_update() const {
  RecordSet now;
  Answer a = read(&now);
  if (a.error != Error::kNone) return a;
  const std::string probe = probe_value(config_.type);
  std::string why;
  auto canonical = canonical_value(config_.type, probe, &why);
  for (const std::string& v : now.values)
    if (v == probe || (canonical && v == *canonical)) return a;  // deleting it would change it
  // RFC 2136 §2.5.4: class NONE, TTL 0 deletes this one RR, which is not there: a no-op that the
  // server authenticates and checks against its update policy first (docs/dns.md "Checking
  // the key at creation").
  RrListPtr updates(ldns_rr_list_new(), &ldns_rr_list_deep_free);
  ldns_rr* rr = ldns_rr_new();
  ldns_rr_set_owner(rr, ldns_dname_new_frm_str(fqdn(config_.name).c_str()));
  ldns_rr_set_type(rr, rr_type(config_.type));
  ldns_rr_set_class(rr, LDNS_RR_CLASS_NONE);
  ldns_rr_set_ttl(rr, 0);
  ldns_rr_list_push_rr(updates.get(), rr);
  if (!ldns_rr_owner(rr) || !push_value(rr, config_.type, probe))
    return rejected("cannot encode the permission probe for " + config_.name, "record.name");
  return send_update(updates.get());
}

Outcome to_outcome(const Rfc2136Client::Answer& a) {
  return a.error == Rfc2136Client::Error::kRejected ? Outcome::final(a.message)
                                                    : Outcome::retryable(a.message);
}

}  // namespace tripline::dns_update
