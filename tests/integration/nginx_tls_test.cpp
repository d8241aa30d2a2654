// TLS for tripline is nginx in front of it (deploy/nginx/tripline.conf); tripline itself serves
// plain HTTP. These tests run Debian's real nginx with the shipped recipe — only the addresses,
// certificate paths and log path are changed — in front of a real tripline server, and speak TLS
// to it with OpenSSL.
//
// trust 7: Pistache 0.0.5's built-in TLS ran each handshake to the end on its single accept
// thread, so one TCP connection that sent nothing stopped every new connection. Built-in TLS was
// removed; the recipe is the tested way.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "../support/externaldns_fake.h"
#include "harness.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

const std::string kRecipe = std::string(TRIPLINE_SOURCE_DIR) + "/deploy/nginx/tripline.conf";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

// Replaces the one occurrence of `from`; the test fails if the recipe no longer has it, so a
// changed recipe is noticed here instead of silently tested in another shape.
void replace_once(std::string& text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  INFO("deploy/nginx/tripline.conf no longer contains: " << from);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  text.replace(at, from.size(), to);
}

int connect_tcp(int port, const char* source = nullptr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  if (source) {  // any 127/8 address is loopback on Linux: a caller nginx sees as someone else
    sockaddr_in local{};
    local.sin_family = AF_INET;
    REQUIRE(::inet_pton(AF_INET, source, &local.sin_addr) == 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{3, 0};  // no read or write below waits longer
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

std::string openssl_errors() {
  std::string all;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    all += std::string(all.empty() ? "" : "; ") + buf;
  }
  return all;
}

// One TLS connection from a client that verifies the test CA and the address 127.0.0.1.
// `version` 0: whatever both sides support; else exactly that version (TLS1_1_VERSION, ...), with
// the client's security level lowered so that it really offers versions OpenSSL 3 disables.
struct TlsClient {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;
  std::string error;  // why the handshake failed

  TlsClient(int port, const std::string& ca_file, int version = 0, const char* source = nullptr) {
    ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(ctx);
    REQUIRE(SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (version) {
      SSL_CTX_set_security_level(ctx, 0);
      REQUIRE(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") == 1);
      REQUIRE(SSL_CTX_set_min_proto_version(ctx, version) == 1);
      REQUIRE(SSL_CTX_set_max_proto_version(ctx, version) == 1);
    }
    fd = connect_tcp(port, source);
    ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    SSL_set_fd(ssl, fd);
    ERR_clear_error();
    if (SSL_connect(ssl) != 1) error = "handshake failed: " + openssl_errors();
  }
  ~TlsClient() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
    if (ctx) SSL_CTX_free(ctx);
  }
  bool ok() const { return error.empty(); }
  std::string version() const { return SSL_get_version(ssl); }

  // Sends a whole HTTP/1.1 request (Connection: close) and reads the answer to the end.
  std::string http(const std::string& request) {
    REQUIRE(ok());
    REQUIRE(SSL_write(ssl, request.data(), int(request.size())) == int(request.size()));
    std::string response;
    char buf[16384];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) response.append(buf, size_t(n));
    return response;
  }
};

int status_of(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(response.substr(9, 3)) : 0;
}
std::string body_of(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// Debian's nginx with the recipe, as its own process: its own prefix, pid file, logs and temp
// directories under `dir`, `daemon off`, on `port`, proxying to tripline on `upstream_port`.
// A second server block on `legacy_port` allows TLS 1.0-1.2 at OpenSSL security level 0: it exists
// only to show that the test's client does get TLS 1.1 where a server allows it, so the refusal
// on the recipe's port is the recipe's doing.
class Nginx {
 public:
  Nginx(const std::string& dir, int port, int legacy_port, int upstream_port)
      : dir_(dir), port_(port) {
    std::string site = read_file(kRecipe);
    REQUIRE(!site.empty());
    replace_once(site, "server 127.0.0.1:8080;",
                 "server 127.0.0.1:" + std::to_string(upstream_port) + ";");
    replace_once(site, "listen 443 ssl http2;",
                 "listen 127.0.0.1:" + std::to_string(port) + " ssl http2;");
    replace_once(site, "/etc/ssl/tripline/fullchain.pem", dir + "/cert.pem");
    replace_once(site, "/etc/ssl/tripline/privkey.pem", dir + "/key.pem");
    replace_once(site, "/var/log/nginx/tripline.log", dir + "/access.log");
    write_file(dir + "/tripline.conf", site);
    write_file(dir + "/nginx.conf",
               "daemon off;\n"
               "worker_processes auto;\n"
               "pid " +
                   dir +
                   "/nginx.pid;\n"
                   "error_log " +
                   dir +
                   "/error.log info;\n"
                   "events { worker_connections 768; }\n"  // Debian's default nginx.conf
                   "http {\n"
                   "  access_log off;\n"
                   "  client_body_temp_path " +
                   dir +
                   "/client_body;\n"
                   "  proxy_temp_path " +
                   dir +
                   "/proxy;\n"
                   "  fastcgi_temp_path " +
                   dir +
                   "/fastcgi;\n"
                   "  uwsgi_temp_path " +
                   dir +
                   "/uwsgi;\n"
                   "  scgi_temp_path " +
                   dir +
                   "/scgi;\n"
                   "  include " +
                   dir +
                   "/tripline.conf;\n"
                   "  server {\n"
                   "    listen 127.0.0.1:" +
                   std::to_string(legacy_port) +
                   " ssl;\n"
                   "    ssl_certificate " +
                   dir +
                   "/cert.pem;\n"
                   "    ssl_certificate_key " +
                   dir +
                   "/key.pem;\n"
                   "    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;\n"
                   "    ssl_ciphers DEFAULT:@SECLEVEL=0;\n"
                   "    return 204;\n"
                   "  }\n"
                   "}\n");
    std::string err = dir + "/nginx.stderr";
    int out = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    REQUIRE(out >= 0);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {  // only async-signal-safe calls until execv
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(out, 1);
      ::dup2(out, 2);
      std::string conf = dir + "/nginx.conf", err_log = dir + "/error.log";
      const char* argv[] = {"/usr/sbin/nginx", "-p", dir.c_str(),  "-e",
                            err_log.c_str(),   "-c", conf.c_str(), nullptr};
      ::execv(argv[0], const_cast<char* const*>(argv));
      ::_exit(127);
    }
    ::close(out);
    auto deadline = SteadyClock::now() + std::chrono::seconds(15);
    while (SteadyClock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("nginx exited at start-up: " << read_file(err) << read_file(dir + "/error.log"));
      }
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (up) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("nginx did not listen on " << port << " within 15 s: " << read_file(dir + "/error.log"));
  }
  ~Nginx() {  // no assertions: it may run while a REQUIRE unwinds
    if (pid_ <= 0) return;
    ::kill(pid_, SIGQUIT);  // graceful: the master stops its workers
    for (int i = 0; i < 100 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (::waitpid(pid_, nullptr, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string access_log() const { return read_file(dir_ + "/access.log"); }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

struct TempDir {
  std::string path;
  ~TempDir() { sh("rm -rf " + path); }
};

// A temporary directory with a self-signed certificate for 127.0.0.1 (cert.pem, key.pem).
std::string dir_with_certificate() {
  std::string dir = make_temp_dir("tl-nginx");
  ::chmod(dir.c_str(), 0711);  // nginx's workers (nobody, under root) reach their temp dirs here
  int rc = 0;
  std::string out =
      sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
         "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
             dir + "/key.pem -out " + dir + "/cert.pem 2>&1",
         &rc);
  INFO(out);
  REQUIRE(rc == 0);
  return dir;
}

}  // namespace

TEST_CASE(
    "trust 7: TLS terminates in nginx with the shipped recipe: triggers work, the caller comes "
    "from X-Forwarded-For, TLS < 1.2 is refused, idle clients stall nothing",
    "[tls][nginx]") {
  if (!binary_or_skip("/usr/sbin/nginx", "nginx")) return;
  if (!binary_or_skip("/usr/bin/openssl", "openssl")) return;
  TempDir tmp{dir_with_certificate()};
  const std::string& dir = tmp.path;
  FakeExternalDns provider;
  ServiceOptions o;
  o.trusted_proxies = {"127.0.0.1"};  // as the recipe's header says
  TestServer s("", o);
  int upstream = std::stoi(s.url().substr(s.url().rfind(':') + 1));
  int port = free_port(), legacy = free_port();
  while (legacy == port) legacy = free_port();
  Nginx nginx(dir, port, legacy, upstream);
  std::string ca = dir + "/cert.pem";

  SECTION(
      "a trigger through https is accepted and recorded; the caller is the X-Forwarded-For nginx "
      "set") {
    // Dynamic DNS: the record's value is the caller's address, so the record shows who tripline
    // believed the caller was.
    json receiver =
        s.create_receiver({{"name", "home-ip"},
                           {"driver", "dns-update"},
                           {"config",
                            {{"backend", "externaldns-webhook"},
                             {"provider_url", provider.url()},
                             {"record", {{"name", "home.example.org"}, {"type", "A"}, {"ttl", 60}}},
                             {"action", "upsert"},
                             {"value", {{"from", "caller-ip"}}}}}});
    std::string trigger_url = receiver["trigger_url"];
    std::string path = trigger_url.substr(trigger_url.find("/_webhooks/"));
    std::string token = path.substr(std::string("/_webhooks/").size());

    // From 127.0.0.2, with a forged X-Forwarded-For that nginx must replace, not pass on.
    TlsClient c(port, ca, 0, "127.0.0.2");
    INFO(c.error);
    REQUIRE(c.ok());
    std::string response =
        c.http("POST " + path +
               " HTTP/1.1\r\nHost: hooks.example.com\r\n"
               "X-Forwarded-For: 203.0.113.9\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    INFO(response);
    REQUIRE(status_of(response) == 202);
    json accepted = json::parse(body_of(response));
    CHECK(accepted["receiver_id"] == receiver["id"]);
    json execution = s.wait_finished(accepted["execution_id"].get<int64_t>());
    CHECK(execution["receiver_id"] == receiver["id"]);
    CHECK(execution["status"] == "succeeded");
    json records = provider.records();
    INFO(records.dump());
    REQUIRE(records.size() == 1);
    CHECK(records[0]["dnsName"] == "home.example.org");
    CHECK(records[0]["targets"] == json::array({"127.0.0.2"}));

    // The token in a header works through the proxy too.
    TlsClient c2(port, ca, 0, "127.0.0.2");
    REQUIRE(c2.ok());
    std::string by_header = c2.http(
        "POST /_webhooks/trigger HTTP/1.1\r\nHost: hooks.example.com\r\nX-Tripline-Token: " +
        token + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    CHECK(status_of(by_header) == 202);

    // Other spellings of a path with a token in it: tripline refuses most of them, but the token
    // in them is as good, so it must not be logged either.
    for (std::string target :
         {"//_webhooks/" + token, "https://hooks.example.com/_webhooks/" + token,
          "/_webhooks/" + token + "?a=1", "/%5Fwebhooks/" + token, "/_WEBHOOKS/" + token,
          "/./_webhooks/" + token, "/api/v1/../../_webhooks/" + token, "/x?t=" + token}) {
      TlsClient v(port, ca, 0, "127.0.0.2");
      REQUIRE(v.ok());
      INFO(target);
      CHECK(status_of(v.http("POST " + target +
                             " HTTP/1.1\r\nHost: hooks.example.com\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n")) != 0);
    }
    // The access log has the requests, without the token.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(100));  // nginx writes it after the answer
    std::string log = nginx.access_log();
    INFO(log);
    CHECK(log.find("\"POST /_webhooks/<token>\" 202") != std::string::npos);
    CHECK(std::count(log.begin(), log.end(), '\n') == 2 + 8);
    CHECK(log.find(token) == std::string::npos);
    CHECK(log.find(token.substr(token.find('.') + 1, 16)) ==
          std::string::npos);  // nor a piece of it
  }

  SECTION(
      "TLS 1.0 and 1.1 are refused by the recipe (and offered for real: the legacy port takes "
      "them)") {
    for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
      INFO("version " << std::hex << version);
      TlsClient control(legacy, ca, version);
      INFO(control.error);
      CHECK(control.ok());  // the client really speaks it
      TlsClient refused(port, ca, version);
      CHECK_FALSE(refused.ok());
      CHECK(refused.error.find("protocol version") != std::string::npos);  // the server's alert
    }
    TlsClient tls12(port, ca, TLS1_2_VERSION);
    INFO(tls12.error);
    CHECK(tls12.ok());
    TlsClient any(port, ca);
    REQUIRE(any.ok());
    CHECK(any.version() == "TLSv1.3");
  }

  SECTION("200 idle connections and 50 stalled handshakes do not delay a new client") {
    std::vector<int> stalled;
    for (int i = 0; i < 200; ++i) stalled.push_back(connect_tcp(port));
    // The first 64 bytes of a ClientHello announcing 512: the server waits for the rest.
    std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    hello += std::string(53, '\x42');
    for (int i = 0; i < 50; ++i) {
      int fd = connect_tcp(port);
      REQUIRE(::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) == ssize_t(hello.size()));
      stalled.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let them all reach nginx
    for (int i = 0; i < 3; ++i) {
      auto start = SteadyClock::now();
      TlsClient c(port, ca);
      INFO(c.error);
      REQUIRE(c.ok());
      std::string response =
          c.http("GET /healthz HTTP/1.1\r\nHost: hooks.example.com\r\nConnection: close\r\n\r\n");
      double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
      INFO(response);
      CHECK(status_of(response) == 200);
      CHECK(seconds < 1.0);
    }
    // They are still open: the new clients did not merely find them closed.
    int still_open = 0;
    for (int fd : stalled) {
      pollfd p{fd, POLLIN, 0};
      still_open += ::poll(&p, 1, 0) == 0;
      ::close(fd);
    }
    CHECK(still_open == int(stalled.size()));
  }
}

TEST_CASE(
    "trust 7: built-in TLS is gone: --tls-cert and TRIPLINE_TLS_CERT fail and point at "
    "deploy/nginx",
    "[tls]") {
  TempDir tmp{make_temp_dir("tl-notls")};
  const std::string& dir = tmp.path;
  int rc = 0;
  std::string out =
      sh(std::string(TRIPLINE_BINARY) + " serve --data-dir " + dir +
             " --listen 127.0.0.1:0 --tls-cert " + dir + "/c.pem --tls-key " + dir + "/k.pem 2>&1",
         &rc);
  INFO(out);
  CHECK(rc == 2);
  CHECK(out.find("--tls-cert") != std::string::npos);
  CHECK(out.find("deploy/nginx") != std::string::npos);

  out = sh("TRIPLINE_TLS_CERT=" + dir + "/c.pem " + std::string(TRIPLINE_BINARY) +
               " serve --data-dir " + dir + " --listen 127.0.0.1:0 2>&1",
           &rc);
  INFO(out);
  CHECK(rc == 2);
  CHECK(out.find("TRIPLINE_TLS_CERT") != std::string::npos);
  CHECK(out.find("deploy/nginx") != std::string::npos);
  CHECK(sh("ls " + dir).empty());  // refused before anything was created
}
