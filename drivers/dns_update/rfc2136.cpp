#include "rfc2136.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <netdb.h>

#include <algorithm>
#include <cstdio>
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

ldns_rdf* address_rdf(const std::string& host, std::string* why) {
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1)
    return ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, sizeof a4, &a4);
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1)
    return ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, sizeof a6, &a6);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) {
    *why = "cannot resolve " + host + ": " + gai_strerror(rc);
    return nullptr;
  }
  ldns_rdf* out = nullptr;
  if (res->ai_family == AF_INET)
    out = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4,
                                &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
  else if (res->ai_family == AF_INET6)
    out = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16,
                                &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr);
  freeaddrinfo(res);
  if (!out) *why = "cannot resolve " + host + " to an address";
  return out;
}

// The reply to one message, or why none came.
struct Exchange {
  ldns_status status = LDNS_STATUS_ERR;
  PacketPtr reply{nullptr, &ldns_pkt_free};
  std::string failure;         // set when the message could not even be sent
  bool failure_final = false;  // e.g. a secret ldns cannot sign with
};

}  // namespace

Rfc2136Client::Rfc2136Client(const Config& config, std::chrono::milliseconds timeout)
    : config_(config), timeout_(timeout) {}

namespace {

class Session {
 public:
  Session(const Config& c, std::chrono::milliseconds timeout) : c_(c), timeout_(timeout) {}

  // Signs `query` (a query directly, an update through ldns_update_pkt_tsig_add and the
  // resolver's key) and sends it over TCP.
  Exchange send(ldns_pkt* query, bool is_update) {
    Exchange x;
    ResolverPtr r(ldns_resolver_new(), &ldns_resolver_deep_free);
    if (!r) {
      x.failure = "ldns_resolver_new failed";
      return x;
    }
    RdfPtr ns(address_rdf(c_.server_host, &x.failure), &ldns_rdf_deep_free);
    if (!ns) return x;
    ldns_resolver_push_nameserver(r.get(), ns.get());  // copies
    ldns_resolver_set_port(r.get(), c_.server_port);
    ldns_resolver_set_usevc(r.get(), true);  // TCP: a closed port answers at once
    ldns_resolver_set_retry(r.get(), 1);
    ldns_resolver_set_retrans(r.get(), 0);
    ldns_resolver_set_fail(r.get(), true);
    ldns_resolver_set_random(r.get(), false);
    timeval tv;
    tv.tv_sec = timeout_.count() / 1000;
    tv.tv_usec = (timeout_.count() % 1000) * 1000;
    ldns_resolver_set_timeout(r.get(), tv);
    // ldns_send verifies the reply's TSIG with these.
    ldns_resolver_set_tsig_keyname(r.get(), fqdn(c_.tsig_key_name).c_str());
    ldns_resolver_set_tsig_algorithm(r.get(), algorithm_dname(c_.tsig_algorithm).c_str());
    ldns_resolver_set_tsig_keydata(r.get(), c_.tsig_secret.c_str());

    ldns_pkt_set_random_id(query);
    ldns_status s = is_update
                        ? ldns_update_pkt_tsig_add(query, r.get())
                        : ldns_pkt_tsig_sign(query, ldns_resolver_tsig_keyname(r.get()),
                                             ldns_resolver_tsig_keydata(r.get()), kFudgeSeconds,
                                             ldns_resolver_tsig_algorithm(r.get()), nullptr);
    if (s != LDNS_STATUS_OK) {
      x.failure = std::string("cannot sign with TSIG key \"") + c_.tsig_key_name +
                  "\": " + ldns_get_errorstr_by_id(s) + "; check tsig_secret and tsig_algorithm";
      x.failure_final = true;
      x.status = s;
      return x;
    }
    // ldns_send, not ldns_resolver_send_pkt: the latter drops the reply when its TSIG does not
    // verify, and with it the NOTAUTH/BADSIG that tells the operator the key is wrong.
    ldns_pkt* reply = nullptr;
    x.status = ldns_send(&reply, r.get(), query);
    x.reply.reset(reply);
    return x;
  }

  // Turns the exchange into an Answer whose message tells the operator what to fix.
  Rfc2136Client::Answer classify(const Exchange& x, bool is_update) const {
    using Error = Rfc2136Client::Error;
    Rfc2136Client::Answer a;
    const std::string& server = c_.server;
    if (!x.reply) {
      a.error = x.failure_final ? Error::kRejected : Error::kUnreachable;
      a.field = x.failure_final ? "tsig_secret" : "server";
      if (!x.failure.empty()) {
        a.message = x.failure;
      } else {
        a.message = "no answer from " + server + " over TCP within " +
                    std::to_string(timeout_.count()) + " ms (" + ldns_get_errorstr_by_id(x.status) +
                    "): the server is down, unreachable or not listening there";
      }
      return a;
    }
    a.rcode = ldns_pkt_get_rcode(x.reply.get());
    if (const ldns_rr* t = ldns_pkt_tsig(x.reply.get()); t && ldns_rr_rdf(t, 5))
      a.tsig_error = ldns_rdf2native_int16(ldns_rr_rdf(t, 5));
    const std::string key = "\"" + c_.tsig_key_name + "\"";
    const std::string rc = rcode_name(a.rcode);
    a.field = a.tsig_error == kBadSig                     ? "tsig_secret"
              : a.tsig_error == kBadKey                   ? "tsig_key_name"
              : a.tsig_error == kBadTime                  ? "server"
              : a.rcode == LDNS_RCODE_NOTZONE             ? "record.name"
              : x.status == LDNS_STATUS_CRYPTO_TSIG_BOGUS ? "tsig_secret"
                                                          : "zone";
    switch (a.rcode) {
      case LDNS_RCODE_NOERROR:
      case LDNS_RCODE_NXDOMAIN:
        if (is_update && a.rcode == LDNS_RCODE_NXDOMAIN) break;
        if (x.status == LDNS_STATUS_CRYPTO_TSIG_BOGUS) {
          a.error = Error::kRejected;
          a.message = "the answer from " + server + " failed TSIG verification with key " + key +
                      "; check tsig_secret and tsig_algorithm";
        }
        return a;
      case LDNS_RCODE_SERVFAIL:
        a.error = Error::kServer;
        a.message = server + " answered SERVFAIL for zone " + c_.zone +
                    ": the zone may be loading or broken on the server";
        return a;
      case LDNS_RCODE_NOTAUTH:
        a.error = Error::kRejected;
        if (a.tsig_error == kBadSig)
          a.message = server + " rejected the TSIG signature (NOTAUTH/BADSIG): the secret of key " +
                      key + " does not match the server's; check tsig_secret and tsig_algorithm";
        else if (a.tsig_error == kBadKey)
          a.message = server + " does not know TSIG key " + key + " with algorithm " +
                      c_.tsig_algorithm +
                      " (NOTAUTH/BADKEY); check tsig_key_name and tsig_algorithm";
        else if (a.tsig_error == kBadTime)
          a.message = server +
                      " rejected the signature's time (NOTAUTH/BADTIME): this host's clock "
                      "and the server's differ by more than 5 minutes";
        else
          a.message = server + " is not authoritative for zone " + c_.zone +
                      " (NOTAUTH); check server and zone";
        return a;
      case LDNS_RCODE_REFUSED:
        a.error = Error::kRejected;
        a.message = is_update
                        ? server + " refused the update (REFUSED): key " + key +
                              " may not change " + c_.name + " in zone " + c_.zone +
                              ", or the zone takes no updates; check the zone's update-policy "
                              "(or allow-update) on the server"
                        : server + " refused the query (REFUSED): it does not serve zone " +
                              c_.zone + " (to this key); check server and zone";
        return a;
      case LDNS_RCODE_NOTZONE:
        a.error = Error::kRejected;
        a.message = c_.name + " is not inside zone " + c_.zone + " as " + server +
                    " sees it (NOTZONE); check record.name and zone";
        return a;
      case LDNS_RCODE_NOTIMPL:
        a.error = Error::kRejected;
        a.message = server + " does not implement dynamic update (NOTIMP)";
        return a;
      default:
        break;
    }
    a.error = Error::kRejected;
    a.message =
        server + " rejected the " + std::string(is_update ? "update" : "query") + " (" + rc + ")";
    return a;
  }

 private:
  const Config& c_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

Rfc2136Client::Answer Rfc2136Client::read(RecordSet* out) const {
  *out = RecordSet{};
  Session session(config_, timeout_);
  PacketPtr q(ldns_pkt_query_new(ldns_dname_new_frm_str(fqdn(config_.name).c_str()),
                                 rr_type(config_.type), LDNS_RR_CLASS_IN, 0),
              &ldns_pkt_free);
  if (!q)
    return {Error::kRejected, "cannot build a query for " + config_.name, 0, 0, "record.name"};
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
  if (!q) return {Error::kRejected, "cannot build a query for " + config_.zone, 0, 0, "zone"};
  Exchange x = session.send(q.get(), false);
  Answer a = session.classify(x, false);
  if (a.error != Error::kNone) return a;
  bool soa = false;
  const ldns_rr_list* answer = ldns_pkt_answer(x.reply.get());
  for (size_t i = 0; answer && i < ldns_rr_list_rr_count(answer); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answer, i);
    char* owner = ldns_rdf2str(ldns_rr_owner(rr));
    if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && owner && normalize_name(owner) == config_.zone)
      soa = true;
    free(owner);
  }
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
  if (!owner)
    return {Error::kRejected, "cannot encode the name " + config_.name, 0, 0, "record.name"};
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
    // ldns_rr_push_rdf would store a null rdf (what a value ldns cannot parse becomes) as is.
    bool ok = true;
    auto push = [&](ldns_rdf* rdf) {
      if (!rdf || !ldns_rr_push_rdf(rr, rdf)) {
        if (rdf) ldns_rdf_deep_free(rdf);
        ok = false;
      }
    };
    switch (config_.type) {
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
    if (!ok)
      return {Error::kRejected,
              "cannot encode \"" + v + "\" as " + to_string(config_.type) + " rdata", 0, 0,
              "value"};
  }
  PacketPtr update(ldns_update_pkt_new(ldns_dname_new_frm_str(fqdn(config_.zone).c_str()),
                                       LDNS_RR_CLASS_IN, nullptr, updates.get(), nullptr),
                   &ldns_pkt_free);
  if (!update) return {Error::kRejected, "cannot build the update message", 0, 0, "zone"};
  ldns_pkt_set_rd(update.get(), false);
  Session session(config_, timeout_);
  Exchange x = session.send(update.get(), true);
  return session.classify(x, true);
}

Outcome to_outcome(const Rfc2136Client::Answer& a) {
  return a.error == Rfc2136Client::Error::kRejected ? Outcome::final(a.message)
                                                    : Outcome::retryable(a.message);
}

}  // namespace tripline::dns_update
