#include "loopback_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace tripline::test {

namespace {

constexpr size_t kMaxHeadBytes = 64 << 10;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// One connection, plain or TLS: read and write whole buffers, false once the peer is gone.
struct Conn {
  int fd;
  SSL* ssl;
  long read(char* buf, size_t n) {
    return ssl ? SSL_read(ssl, buf, static_cast<int>(n)) : ::recv(fd, buf, n, 0);
  }
  void write_all(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      long n = ssl ? SSL_write(ssl, s.data() + off, static_cast<int>(s.size() - off))
                   : ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
};

template <typename T, typename F>
T* read_pem(const std::string& pem, F reader) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  T* out = reader(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return out;
}

}  // namespace

LoopbackHttpServer::LoopbackHttpServer(std::string name, Handler handler, std::optional<Tls> tls,
                                       size_t max_body)
    : name_(std::move(name)), handler_(std::move(handler)), max_body_(max_body) {
  if (tls) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    X509* cert = read_pem<X509>(tls->cert_pem, PEM_read_bio_X509);
    EVP_PKEY* key = read_pem<EVP_PKEY>(tls->key_pem, PEM_read_bio_PrivateKey);
    bool loaded = cert && key && SSL_CTX_use_certificate(ctx, cert) == 1 &&
                  SSL_CTX_use_PrivateKey(ctx, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!loaded) {
      SSL_CTX_free(ctx);
      throw std::runtime_error(name_ + ": cannot load its certificate");
    }
    if (!tls->client_ca_pem.empty()) {
      // Client certificates are optional (a bearer token works too) but, when sent, verified.
      X509* ca = read_pem<X509>(tls->client_ca_pem, PEM_read_bio_X509);
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
      X509_free(ca);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    ctx_ = ctx;
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
    throw std::runtime_error(name_ + ": cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

LoopbackHttpServer::~LoopbackHttpServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

std::vector<LoopbackHttpServer::Exchange> LoopbackHttpServer::exchanges() const {
  std::lock_guard<std::mutex> l(mu_);
  return exchanges_;
}

void LoopbackHttpServer::clear() {
  std::lock_guard<std::mutex> l(mu_);
  exchanges_.clear();
}

void LoopbackHttpServer::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    handle(fd);
    ::close(fd);
  }
}

void LoopbackHttpServer::handle(int fd) {
  HttpRequest req;
  SSL* ssl = nullptr;
  if (ctx_) {
    ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {  // e.g. the client did not trust our CA: it hangs up
      ERR_clear_error();
      SSL_free(ssl);
      return;
    }
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      if (SSL_get_verify_result(ssl) == X509_V_OK) {
        char cn[256] = {0};
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
        req.client_cn = cn;
      }
      X509_free(peer);
    }
  }
  Conn conn{fd, ssl};
  auto done = [&] {
    if (ssl) {
      SSL_shutdown(ssl);
      SSL_free(ssl);
      ERR_clear_error();
    }
  };

  std::string in;
  char buf[8192];
  size_t header_end;
  while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
    long n = in.size() > kMaxHeadBytes ? 0 : conn.read(buf, sizeof buf);
    if (n <= 0) return done();
    in.append(buf, static_cast<size_t>(n));
  }
  std::string head = in.substr(0, header_end);
  req.body = in.substr(header_end + 4);
  size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  size_t p1 = line.find(' '), p2 = line.find(' ', p1 + 1);
  req.method = line.substr(0, p1);
  req.path = p1 == std::string::npos ? "" : line.substr(p1 + 1, p2 - p1 - 1);
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string h = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = h.find(':');
    if (colon != std::string::npos)
      req.headers[lower(h.substr(0, colon))] = trim(h.substr(colon + 1));
  }
  size_t length = std::strtoul(req.header("content-length").c_str(), nullptr, 10);
  if (length > max_body_) {
    req.too_large = true;
    req.body.clear();
  } else {
    while (req.body.size() < length) {
      long n = conn.read(buf, sizeof buf);
      if (n <= 0) return done();
      req.body.append(buf, static_cast<size_t>(n));
    }
    req.body.resize(length);
  }

  HttpResponse r = handler_(req);
  {
    std::lock_guard<std::mutex> l(mu_);
    exchanges_.push_back({req, r.status});
  }
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  if (r.status != 204) out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  if (r.status != 204) out += r.body;
  conn.write_all(out);
  done();
}

}  // namespace tripline::test
