#include "http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <mutex>
#include <shared_mutex>
#include <sstream>

#include "http_framing.h"
#include "log.h"

namespace tripline {

namespace Http = Pistache::Http;

namespace {

class PistacheRequest : public HttpRequest {
 public:
  explicit PistacheRequest(const Http::Request& r) : r_(r) {}
  std::string_view method() const override { return Http::methodString(r_.method()); }
  std::string_view path() const override { return r_.resource(); }
  std::string_view body() const override { return r_.body(); }
  std::optional<std::string> header(std::string_view name) const override {
    std::string n(name);
    if (auto raw = r_.headers().tryGetRaw(n)) return raw->value();
    // Headers Pistache knows are parsed into typed objects; write them back as text.
    if (auto typed = r_.headers().tryGet(n)) {
      std::ostringstream os;
      typed->write(os);
      return os.str();
    }
    return std::nullopt;
  }
  std::optional<std::string> query(std::string_view name) const override {
    return r_.query().get(std::string(name));
  }
  std::string peer_address() const override { return r_.address().host(); }
  std::vector<std::pair<std::string, std::string>> headers() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, raw] : r_.headers().rawList()) out.emplace_back(name, raw.value());
    for (const auto& typed : r_.headers().list()) {
      std::ostringstream os;
      typed->write(os);
      out.emplace_back(typed->name(), os.str());
    }
    return out;
  }

 private:
  const Http::Request& r_;
};

// Keeps the server's Pistache objects alive for a responder that needs them (the rare fallback
// of Reply::send, below) after its request's handler returned: stop() waits for such a use to
// end and makes later ones skip.
struct Lifetime {
  std::shared_mutex mu;
  bool alive = true;
};

// One per connection, shared by the framing guard, the request handler and every responder of a
// request on it (which may answer from another thread, after the handler returned).
struct Connection {
  Connection(RequestFraming::Limits l, std::shared_ptr<Lifetime> life,
             const std::shared_ptr<Pistache::Tcp::Peer>& p)
      : framing(l), lifetime(std::move(life)), peer(p), fd(p->fd()) {}
  RequestFraming framing;  // the guard's, on the event loop's thread only
  RequestFraming::Output out;
  uint64_t drained = 0;  // bytes read and dropped after a refusal
  std::shared_ptr<Lifetime> lifetime;
  std::weak_ptr<Pistache::Tcp::Peer> peer;
  const int fd;
  // Pistache closes the fd right after reporting the disconnection, and the number may be
  // reused at once: nothing may write to or shut the socket by number from then on. `mu` is held
  // across every direct write, so the close waits for a write in progress.
  std::mutex mu;
  bool open = true;  // false once Pistache reported the disconnection
  // The request in progress (event loop's thread only): which lane it takes, and for the
  // direct lane the bytes gathered so far and how many are still to come.
  enum class Lane { kNone, kPistache, kDirect } lane = Lane::kNone;
  std::string request;      // direct lane: header section and body
  size_t head = 0;          // direct lane: the header section's length in `request`
  uint64_t left = 0;        // direct lane: bytes still to come
  std::string to_pistache;  // this read's bytes for Pistache's parser (reused)
};

// An answer, written straight to the socket by whichever thread has it: the event loop's for an
// answer given in the handler, the ingest writer's for a 202 after its commit. Pistache 0.0.5
// would queue every response and wake the event loop through an eventfd for it, which then
// re-arms epoll for writing and writes on the next writable event: seven or eight system calls
// per response instead of this one send(). Only when the socket cannot take it all at once (a
// client that does not read) is the rest handed to Pistache's queue, which waits for writable.
class Reply {
 public:
  Reply(std::shared_ptr<Connection> conn, Http::Version version, bool keep_alive)
      : conn_(std::move(conn)), version_(version), keep_alive_(keep_alive) {}

  void operator()(HttpResponse&& r) const { send(serialize(r)); }

 private:
  // What Pistache 0.0.5 wrote: status line, Connection (echoing the request's, else Close),
  // headers, Content-Type, Content-Length, body.
  std::string serialize(const HttpResponse& r) const {
    std::string out;
    size_t headers = 0;
    for (const auto& [k, v] : r.headers) headers += k.size() + v.size() + 4;
    out.reserve(128 + headers + r.content_type.size() + r.body.size());
    out += Http::versionString(version_);
    out += ' ';
    out += std::to_string(r.status);
    out += ' ';
    out += Http::codeString(static_cast<Http::Code>(r.status));
    out += keep_alive_ ? "\r\nConnection: Keep-Alive\r\n" : "\r\nConnection: Close\r\n";
    for (const auto& [k, v] : r.headers) {
      out += k;
      out += ": ";
      out += v;
      out += "\r\n";
    }
    if (!r.content_type.empty()) {
      out += "Content-Type: ";
      out += r.content_type;
      out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += "\r\n\r\n";
    out += r.body;
    return out;
  }

  void send(std::string bytes) const {
    // A peer Pistache dropped without reporting it (its idle-connection timeout closes the fd
    // that way) may already be gone: then so is its fd.
    auto peer = conn_->peer.lock();
    if (!peer) return;
    // Pistache's idle-connection check reads this (as its own ResponseWriter::send sets it): an
    // answered connection waits for its next request under the keep-alive timeout.
    peer->setIdle(true);
    std::unique_lock lock(conn_->mu);
    if (!conn_->open) return;  // the client is gone
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n =
          ::send(conn_->fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;
      }
    }
    if (sent == bytes.size() || (errno != EAGAIN && errno != EWOULDBLOCK))
      return;  // done, or reset
    lock.unlock();
    // The socket's buffer is full: Pistache's queue writes the rest once it is writable.
    std::shared_lock alive(conn_->lifetime->mu);
    if (!conn_->lifetime->alive) return;
    bytes.erase(0, sent);
    size_t size = bytes.size();
    peer->send(Pistache::RawBuffer(std::move(bytes), size));
  }

  std::shared_ptr<Connection> conn_;
  Http::Version version_;
  bool keep_alive_;
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// A trigger request read by the direct lane (see FramingGuard::onInput): a view of the bytes the
// framing checked, answering what PistacheRequest would. Header values are the text as sent
// (without the surrounding blanks), where Pistache writes the headers it knows back from its
// typed form; the query is split as Pistache 0.0.5 splits it (no decoding; the first of a
// repeated name).
class DirectRequest : public HttpRequest {
 public:
  DirectRequest(std::string_view bytes, size_t head, const Pistache::Tcp::Peer& peer)
      : head_(bytes.substr(0, head)), body_(bytes.substr(head)), peer_(peer) {
    std::string_view line = head_.substr(0, head_.find("\r\n"));
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    method_ = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t q = target.find('?');
    path_ = target.substr(0, q);
    if (q != std::string_view::npos) query_ = target.substr(q + 1);
    http10_ = line.substr(sp2 + 1) == "HTTP/1.0";
  }
  std::string_view method() const override { return method_; }
  std::string_view path() const override { return path_; }
  std::string_view body() const override { return body_; }
  std::optional<std::string> header(std::string_view name) const override {
    auto v = find_header(name);
    return v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
  }
  std::optional<std::string> query(std::string_view name) const override {
    std::string_view rest = query_;
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      size_t eq = pair.find('=');
      if (pair.substr(0, eq) == name)
        return std::string(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    }
    return std::nullopt;
  }
  std::string peer_address() const override { return peer_.address().host(); }
  std::vector<std::pair<std::string, std::string>> headers() const override {
    std::vector<std::pair<std::string, std::string>> out;
    visit_headers(
        [](void* ctx, std::string_view name, std::string_view value) {
          static_cast<decltype(out)*>(ctx)->emplace_back(name, value);
        },
        &out);
    return out;
  }
  void visit_headers(HeaderFn fn, void* ctx) const override {
    size_t pos = head_.find("\r\n") + 2;
    while (pos < head_.size()) {
      size_t eol = head_.find("\r\n", pos);
      std::string_view field = head_.substr(pos, eol - pos);
      pos = eol + 2;
      if (field.empty()) break;
      size_t colon = field.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view value = field.substr(colon + 1);
      size_t b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t");
      value = b == std::string_view::npos ? std::string_view() : value.substr(b, e - b + 1);
      fn(ctx, field.substr(0, colon), value);
    }
  }

  Http::Version version() const { return http10_ ? Http::Version::Http10 : Http::Version::Http11; }
  // What Pistache answers: keep-alive only when the request says so (the framing adds it to an
  // HTTP/1.1 request that says nothing).
  bool keep_alive() const {
    auto v = find_header("Connection");
    return v && iequals(*v, "keep-alive");
  }

 private:
  std::optional<std::string_view> find_header(std::string_view name) const {
    size_t pos = head_.find("\r\n") + 2;
    while (pos < head_.size()) {
      size_t eol = head_.find("\r\n", pos);
      std::string_view field = head_.substr(pos, eol - pos);
      pos = eol + 2;
      if (field.empty()) break;
      size_t colon = field.find(':');
      if (colon == std::string_view::npos || !iequals(field.substr(0, colon), name)) continue;
      std::string_view value = field.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      return value;
    }
    return std::nullopt;
  }

  std::string_view head_, body_, method_, path_, query_;
  bool http10_ = false;
  const Pistache::Tcp::Peer& peer_;
};

class RequestHandler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(RequestHandler)
  explicit RequestHandler(const HttpHandler* handler) : handler_(handler) {}

  // Set by the guard around each call of onInput (same thread): the connection being parsed.
  std::shared_ptr<Connection>* current = nullptr;

  void onRequest(const Http::Request& request, Http::ResponseWriter) override {
    auto connection = request.headers().tryGet<Http::Header::Connection>();
    Reply reply(*current, request.version(),
                connection && connection->control() == Http::ConnectionControl::KeepAlive);
    PistacheRequest req(request);
    try {
      (*handler_)(req, reply);
    } catch (const std::exception& e) {
      log::error("unhandled exception in handler", {{"error", e.what()}});
      reply(error_response(500, "internal", "an internal error occurred; see the server log"));
    }
  }

  void handle_direct(const std::shared_ptr<Connection>& conn, const Pistache::Tcp::Peer& peer) {
    DirectRequest req(conn->request, conn->head, peer);
    Reply reply(conn, req.version(), req.keep_alive());
    try {
      (*handler_)(req, reply);
    } catch (const std::exception& e) {
      log::error("unhandled exception in handler", {{"error", e.what()}});
      reply(error_response(500, "internal", "an internal error occurred; see the server log"));
    }
  }

 private:
  const HttpHandler* handler_;
};

// Tcp::Handler::associateTransport is private and non-virtual; the transport calls it only on the
// handler it was given (the FramingGuard). The guard hands the same transport to the request
// handler it wraps, through this member pointer (taking it in an explicit instantiation is the
// one place C++ does not check access).
using AssociateTransport = void (Pistache::Tcp::Handler::*)(Pistache::Tcp::Transport*);
template <AssociateTransport F>
struct AssociateAccess {
  friend AssociateTransport associate_transport() { return F; }
};
template struct AssociateAccess<&Pistache::Tcp::Handler::associateTransport>;
AssociateTransport associate_transport();

// Sits between the TCP transport and Pistache's HTTP parser: every received byte goes through a
// RequestFraming first, which forwards well-framed requests to the wrapped Handler (through the
// public Tcp::Handler interface, since Http::Handler's own onInput is private) and answers and
// closes the rest itself. See http_framing.h for what is checked and why.
class FramingGuard : public Http::Handler {
 public:
  HTTP_PROTOTYPE(FramingGuard)
  FramingGuard(const HttpHandler* handler, std::shared_ptr<Lifetime> lifetime,
               RequestFraming::Limits limits, size_t max_request_bytes,
               std::chrono::milliseconds header_timeout, std::chrono::milliseconds body_timeout)
      : limits_(limits),
        lifetime_(std::move(lifetime)),
        inner_(std::make_shared<RequestHandler>(handler)) {
    inner_->setMaxRequestSize(max_request_bytes);
    inner_->setHeaderTimeout(header_timeout);
    inner_->setBodyTimeout(body_timeout);
  }
  // The transport clones its handler once per event loop; each clone needs its own inner handler.
  FramingGuard(const FramingGuard& o)
      : Http::Handler(o),
        limits_(o.limits_),
        lifetime_(o.lifetime_),
        inner_(std::static_pointer_cast<RequestHandler>(o.inner_->clone())) {}

  void onRequest(const Http::Request&, Http::ResponseWriter) override {}  // the inner one answers

  void onConnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    if (!associated_) {
      (inner_.get()->*associate_transport())(transport());
      associated_ = true;
    }
    peer->putData(kState, std::make_shared<Connection>(limits_, lifetime_, peer));
    static_cast<Pistache::Tcp::Handler&>(*inner_).onConnection(peer);
  }

  void onDisconnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    // Pistache closes the fd right after this returns, and the number may be reused at once: a
    // pending callback must not shut a socket down by number from now on.
    if (auto conn = std::static_pointer_cast<Connection>(peer->tryGetData(kState))) {
      std::lock_guard lock(conn->mu);
      conn->open = false;
    }
    static_cast<Pistache::Tcp::Handler&>(*inner_).onDisconnection(peer);
  }

  void onInput(const char* buffer, size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override {
    auto conn = std::static_pointer_cast<Connection>(peer->tryGetData(kState));
    if (!conn) return;
    if (conn->framing.refused()) return drain(*conn, len, *peer);
    RequestFraming::Output& out = conn->out;  // reused: its buffers keep their capacity
    out.forward.clear();
    out.reply.clear();
    out.close = false;
    out.starts.clear();
    conn->framing.feed(std::string_view(buffer, len), &out);
    if (!out.forward.empty()) route(conn, peer);
    if (!out.reply.empty()) reply(conn, out.reply, out.close, peer);
  }

 private:
  // The direct lane: a trigger (POST /_webhooks/...) skips Pistache's HTTP parser, which costs
  // more than the rest of an accepted trigger outside the commit (it copies every header into
  // its own maps and allocates for each). The framing above has already checked the request
  // line, every header field and the Content-Length, and delimits each request (out.starts);
  // the request's bytes are gathered here and handed to the handler once complete. Everything else
  // goes to Pistache's parser, in order.
  static bool direct_lane(std::string_view head) { return head.rfind("POST /_webhooks/", 0) == 0; }

  void route(const std::shared_ptr<Connection>& conn,
             const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    const RequestFraming::Output& out = conn->out;
    std::string_view bytes = out.forward;
    conn->to_pistache.clear();
    size_t pos = 0;
    auto take = [&](size_t end) {  // bytes [pos, end) belong to the request in progress
      std::string_view chunk = bytes.substr(pos, end - pos);
      pos = end;
      if (chunk.empty()) return;
      if (conn->lane != Connection::Lane::kDirect) {
        conn->to_pistache.append(chunk);
        return;
      }
      conn->request.append(chunk);
      conn->left -= std::min<uint64_t>(conn->left, chunk.size());
      if (conn->left == 0) {
        conn->lane = Connection::Lane::kNone;
        inner_->handle_direct(conn, *peer);
      }
    };
    for (const auto& start : out.starts) {
      take(start.at);
      std::string_view head = bytes.substr(start.at, start.head);
      if (!direct_lane(head)) {
        conn->lane = Connection::Lane::kPistache;
        continue;
      }
      to_pistache(conn, peer);  // what came before goes first
      conn->lane = Connection::Lane::kDirect;
      conn->request.clear();
      conn->head = start.head;
      conn->left = start.head + start.body;
      // What Pistache's parser does at a request's start, for its idle-connection check: the
      // request (not the keep-alive) timeouts apply from now on.
      Http::Handler::getParser(peer)->reset();
      peer->setIdle(false);
    }
    take(bytes.size());
    to_pistache(conn, peer);
  }

  void to_pistache(const std::shared_ptr<Connection>& conn,
                   const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    if (conn->to_pistache.empty()) return;
    std::shared_ptr<Connection> current = conn;
    inner_->current = &current;
    static_cast<Pistache::Tcp::Handler&>(*inner_).onInput(conn->to_pistache.data(),
                                                          conn->to_pistache.size(), peer);
    inner_->current = nullptr;
    conn->to_pistache.clear();
  }

  // After a refusal the client may still be sending the body it announced. Closing at once would
  // make our kernel answer those bytes with a reset, and a reset can destroy the unread answer on
  // the client's side (RFC 9112 §9.6). So this is a lingering close: the answer goes out, then
  // our side is shut for writing (FIN), and what still arrives is read and dropped until the
  // client closes, or kLingerBytes were dropped, or kLingerTime passed, whichever comes first.
  static constexpr uint64_t kLingerBytes = 16 << 20;
  static constexpr std::chrono::seconds kLingerTime{2};

  static void drain(Connection& conn, size_t len, Pistache::Tcp::Peer& peer) {
    conn.drained += len;
    if (conn.drained > kLingerBytes && conn.open) abort_connection(peer.fd());
  }

  // Ends a connection now, with a reset. Shutting the read side makes Pistache's next read see
  // the end and close the socket; SO_LINGER 0 makes that close a reset. A plain shutdown and
  // close is not enough while the client is still sending: measured on Linux, its blocking
  // send() then often hangs about 106 s, neither accepted nor reset, until the kernel drops the
  // closed socket (trust 12: the 107 s of the report). With the reset it fails at once.
  static void abort_connection(int fd) {
    linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::shutdown(fd, SHUT_RD);
  }

  // Writes `bytes` now, then (close) lingers. Pistache queues every write and sends a queued one
  // only on an epoll event that reports the socket writable and not readable (Transport::onReady
  // in 0.0.5); while a client keeps sending its body, events are readable, and the answer can
  // wait for as long as the client sends. Transport::flush() writes the queue on the spot; this
  // runs on the connection's own event-loop thread, the only thread that may drain that queue.
  void reply(const std::shared_ptr<Connection>& conn, const std::string& bytes, bool close,
             const std::shared_ptr<Pistache::Tcp::Peer>& peer) {
    std::weak_ptr<Pistache::Tcp::Peer> weak = peer;
    std::weak_ptr<Connection> weak_conn = conn;
    Pistache::Tcp::Transport* transport = this->transport();
    peer->send(Pistache::RawBuffer(bytes, bytes.size()))
        .then(
            [weak, weak_conn, close, transport](ssize_t) {
              auto p = weak.lock();
              auto c = weak_conn.lock();
              if (!close || !p || !c || !c->open) return;
              ::shutdown(p->fd(), SHUT_WR);
              linger_then_close(transport, weak, weak_conn);
            },
            [weak, weak_conn](std::exception_ptr) {
              auto p = weak.lock();
              auto c = weak_conn.lock();
              if (p && c && c->open) abort_connection(p->fd());
            });
    transport->flush();
  }

  // Ends the linger after kLingerTime, on a Pistache timer (on the same event loop).
  static void linger_then_close(Pistache::Tcp::Transport* transport,
                                std::weak_ptr<Pistache::Tcp::Peer> weak,
                                std::weak_ptr<Connection> weak_conn) {
    int timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    auto end = [weak, weak_conn] {
      auto p = weak.lock();
      auto c = weak_conn.lock();
      if (p && c && c->open) abort_connection(p->fd());
    };
    if (timer < 0) return end();
    Pistache::Async::Promise<uint64_t>([&](Pistache::Async::Deferred<uint64_t> deferred) {
      transport->armTimer(timer, kLingerTime, std::move(deferred));
    })
        .then(
            [timer, end](uint64_t) {
              end();
              ::close(timer);
            },
            [timer, end](std::exception_ptr) {
              end();
              ::close(timer);
            });
  }

  // Short enough for std::string's small-buffer: Pistache looks peer data up by std::string.
  static constexpr const char* kState = "tl.conn";
  RequestFraming::Limits limits_;
  std::shared_ptr<Lifetime> lifetime_;
  std::shared_ptr<RequestHandler> inner_;
  bool associated_ = false;
};

}  // namespace

struct HttpServer::Impl {
  HttpHandler handler;
  HttpServerOptions options;
  std::unique_ptr<Http::Endpoint> endpoint;
  std::shared_ptr<Lifetime> lifetime = std::make_shared<Lifetime>();
  int reserved_fd = -1;  // holds port 0's pick until Pistache listens on it
};

HttpServer::HttpServer(HttpHandler handler, HttpServerOptions options)
    : impl_(new Impl{std::move(handler), std::move(options), nullptr}) {}

HttpServer::~HttpServer() { stop(); }

// Pistache binds and serves in one call, but the public URL must be known before the first
// request. For port 0 we let the kernel pick a port on a socket that is bound but not listening,
// with SO_REUSEADDR, which Linux lets Pistache bind too; the reservation is dropped once
// Pistache listens, so no other process can take the port in between.
Status HttpServer::bind() {
  if (impl_->options.port != 0) return Status::Ok();
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  if (getaddrinfo(impl_->options.host.c_str(), "0", &hints, &res) != 0 || !res)
    return Status::Invalid("cannot listen on " + impl_->options.host + ": not an IP address");
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  bool ok = fd >= 0 && ::bind(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (!ok || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return Status::Unavailable("cannot reserve a port on " + impl_->options.host);
  }
  impl_->options.port =
      ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  impl_->reserved_fd = fd;
  return Status::Ok();
}

Status HttpServer::serve() {
  try {
    Pistache::Address addr(impl_->options.host, Pistache::Port(impl_->options.port));
    impl_->endpoint = std::make_unique<Http::Endpoint>(addr);
    auto opts = Http::Endpoint::options()
                    .threads(impl_->options.threads)
                    .flags(Pistache::Tcp::Options::ReuseAddr)
                    .maxRequestSize(impl_->options.max_request_bytes + 32 * 1024)
                    .headerTimeout(std::chrono::seconds(10))
                    .bodyTimeout(std::chrono::seconds(30));
    impl_->endpoint->init(opts);
    RequestFraming::Limits limits;
    limits.max_body = impl_->options.max_request_bytes;
    // Pistache's own cap counts headers too; ours (in the guard) applies first.
    size_t pistache_cap = limits.max_body + limits.max_header_bytes + 1024;
    impl_->endpoint->setHandler(
        Http::make_handler<FramingGuard>(&impl_->handler, impl_->lifetime, limits, pistache_cap,
                                         std::chrono::seconds(10), std::chrono::seconds(30)));
    impl_->endpoint->serveThreaded();
  } catch (const std::exception& e) {
    return Status::Unavailable("cannot listen on " + impl_->options.host + ":" +
                               std::to_string(impl_->options.port) + ": " + e.what());
  }
  if (impl_->reserved_fd >= 0) ::close(impl_->reserved_fd);
  impl_->reserved_fd = -1;
  return Status::Ok();
}

uint16_t HttpServer::port() const { return impl_->options.port; }

void HttpServer::stop() {
  if (impl_ && impl_->endpoint) {
    {
      std::unique_lock lock(impl_->lifetime->mu);
      impl_->lifetime->alive = false;
    }
    impl_->endpoint->shutdown();
    impl_->endpoint.reset();
  }
  if (impl_ && impl_->reserved_fd >= 0) ::close(impl_->reserved_fd);
  if (impl_) impl_->reserved_fd = -1;
}

}  // namespace tripline
