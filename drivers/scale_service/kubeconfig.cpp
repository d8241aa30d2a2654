#include "kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

namespace tripline::scale_service {

namespace {

// Small files only: a kubeconfig, a token, a namespace name.
constexpr std::streamsize kMaxFileBytes = 1 << 20;

bool read_file_impl(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::string s(static_cast<size_t>(kMaxFileBytes) + 1, '\0');
  f.read(s.data(), kMaxFileBytes + 1);
  if (f.bad() || f.gcount() > kMaxFileBytes) return false;
  s.resize(static_cast<size_t>(f.gcount()));
  *out = std::move(s);
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return s.substr(i);
}

std::string resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || dir.empty()) return path;
  return dir + "/" + path;
}

// The entry named `name` of a kubeconfig list ("clusters", "contexts", "users"): its inner map.
YAML::Node named(const YAML::Node& root, const char* list, const char* inner,
                 const std::string& name) {
  const YAML::Node l = root[list];
  if (!l || !l.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& item : l)
    if (item.IsMap() && item["name"] && item["name"].IsScalar() && item["name"].Scalar() == name &&
        item[inner] && item[inner].IsMap())
      return item[inner];
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string scalar(const YAML::Node& map, const char* key) {
  const YAML::Node n = map[key];
  return n && n.IsScalar() ? n.Scalar() : std::string();
}

bool truthy(const YAML::Node& map, const char* key) {
  const YAML::Node n = map[key];
  if (!n || !n.IsScalar()) return false;
  std::string v = n.Scalar();
  return v == "true" || v == "True" || v == "TRUE" || v == "yes" || v == "on";
}

Status invalid(const std::string& source, const std::string& why) {
  return Status::Invalid(source + ": " + why);
}

}  // namespace

bool read_small_file(const std::string& path, std::string* out) {
  return read_file_impl(path, out);
}

bool base64_decode(std::string_view text, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string res;
  uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    int v = value(c);
    if (v < 0 || padding) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      res.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return false;  // a lone sixth of a byte: truncated input
  *out = std::move(res);
  return true;
}

Result<KubeCredentials> parse_kubeconfig(std::string_view text, const std::string& dir,
                                         const std::string& context_name) {
  KubeCredentials c;
  std::string source = "kubeconfig";
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return invalid(source, std::string("is not YAML: ") + e.what());
  }
  if (!root.IsMap()) return invalid(source, "is not a kubeconfig (no top-level map)");
  try {
    std::string ctx_name = context_name.empty() ? scalar(root, "current-context") : context_name;
    if (ctx_name.empty())
      return invalid(source, "has no current-context; name a context (--kube-context)");
    source += " (context " + ctx_name + ")";
    c.source = source;
    YAML::Node ctx = named(root, "contexts", "context", ctx_name);
    if (!ctx) return invalid(source, "no context named \"" + ctx_name + "\"");
    std::string cluster_name = scalar(ctx, "cluster"), user_name = scalar(ctx, "user");
    if (std::string ns = scalar(ctx, "namespace"); !ns.empty()) {
      if (!valid_dns1123_label(ns))
        return invalid(source, "context \"" + ctx_name + "\" names namespace \"" +
                                   ns.substr(0, 80) + "\", which is not a DNS-1123 label");
      c.default_namespace = ns;
    }

    YAML::Node cluster = named(root, "clusters", "cluster", cluster_name);
    if (!cluster) return invalid(source, "no cluster named \"" + cluster_name + "\"");
    if (truthy(cluster, "insecure-skip-tls-verify"))
      return invalid(source,
                     "cluster \"" + cluster_name +
                         "\" sets insecure-skip-tls-verify: true; tripline always verifies the "
                         "API server's certificate: give its CA (certificate-authority or "
                         "certificate-authority-data) instead");
    c.server = scalar(cluster, "server");
    while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
    if (c.server.rfind("https://", 0) != 0)
      return invalid(source, "cluster \"" + cluster_name + "\" server \"" + c.server +
                                 "\" is not an https:// URL");
    if (std::string data = scalar(cluster, "certificate-authority-data"); !data.empty()) {
      if (!base64_decode(data, &c.ca_pem))
        return invalid(source,
                       "cluster \"" + cluster_name + "\" certificate-authority-data is not base64");
    } else if (std::string file = scalar(cluster, "certificate-authority"); !file.empty()) {
      c.ca_file = resolve(dir, file);
    } else {
      return invalid(source,
                     "cluster \"" + cluster_name +
                         "\" names no CA (certificate-authority or certificate-authority-data); "
                         "tripline does not trust the system's CAs for a Kubernetes API");
    }

    YAML::Node user = named(root, "users", "user", user_name);
    if (!user) return invalid(source, "no user named \"" + user_name + "\"");
    if (user["exec"] || user["auth-provider"])
      return invalid(source,
                     "user \"" + user_name +
                         "\" uses exec or auth-provider, which tripline does not run; give it a "
                         "token, tokenFile or client certificate");
    c.token = scalar(user, "token");
    if (std::string f = scalar(user, "tokenFile"); !f.empty()) c.token_file = resolve(dir, f);
    if (std::string d = scalar(user, "client-certificate-data"); !d.empty()) {
      if (!base64_decode(d, &c.client_cert_pem))
        return invalid(source, "user \"" + user_name + "\" client-certificate-data is not base64");
    } else if (std::string f = scalar(user, "client-certificate"); !f.empty()) {
      c.client_cert_file = resolve(dir, f);
    }
    if (std::string d = scalar(user, "client-key-data"); !d.empty()) {
      if (!base64_decode(d, &c.client_key_pem))
        return invalid(source, "user \"" + user_name + "\" client-key-data is not base64");
    } else if (std::string f = scalar(user, "client-key"); !f.empty()) {
      c.client_key_file = resolve(dir, f);
    }
    bool has_cert = !c.client_cert_pem.empty() || !c.client_cert_file.empty();
    bool has_key = !c.client_key_pem.empty() || !c.client_key_file.empty();
    if (has_cert != has_key)
      return invalid(
          source,
          "user \"" + user_name +
              "\" has a client certificate without its key, or a key without its certificate");
    if (!has_cert && c.token.empty() && c.token_file.empty())
      return invalid(source,
                     "user \"" + user_name + "\" has no token, tokenFile or client certificate");
  } catch (const YAML::Exception& e) {
    return invalid(source, std::string("cannot be read: ") + e.what());
  }
  return c;
}

Result<KubeCredentials> load_kubeconfig(const std::string& path, const std::string& context) {
  if (path.find(':') != std::string::npos)
    return Status::Invalid("kubeconfig \"" + path +
                           "\": tripline reads one file, not a list of files");
  std::string text;
  if (!read_small_file(path, &text))
    return Status::Invalid("kubeconfig \"" + path + "\" cannot be read");
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  auto c = parse_kubeconfig(text, dir, context);
  if (!c.ok()) {
    std::string msg = c.status().message();
    if (msg.rfind("kubeconfig", 0) == 0) msg = "kubeconfig " + path + msg.substr(10);
    return Status::Invalid(msg);
  }
  KubeCredentials out = std::move(c).value();
  out.source = "kubeconfig " + path + out.source.substr(10);
  return out;
}

Result<KubeCredentials> in_cluster(const std::string& host, const std::string& port,
                                   const std::string& account_dir) {
  if (host.empty())
    return Status::NotFound("not in a Kubernetes cluster (KUBERNETES_SERVICE_HOST is not set)");
  KubeCredentials c;
  c.source = "in-cluster service account (" + account_dir + ")";
  bool v6 = host.find(':') != std::string::npos;
  c.server = "https://" + (v6 ? "[" + host + "]" : host) + ":" + (port.empty() ? "443" : port);
  c.token_file = account_dir + "/token";
  c.ca_file = account_dir + "/ca.crt";
  std::string probe;
  if (!read_small_file(c.token_file, &probe))
    return Status::Invalid(c.source + ": cannot read the token " + c.token_file);
  if (!read_small_file(c.ca_file, &probe))
    return Status::Invalid(c.source + ": cannot read the CA " + c.ca_file);
  if (std::string ns; read_small_file(account_dir + "/namespace", &ns) && !trim(ns).empty()) {
    ns = trim(ns);
    if (!valid_dns1123_label(ns))
      return Status::Invalid(c.source + ": the namespace file " + account_dir +
                             "/namespace does not hold a DNS-1123 label");
    c.default_namespace = ns;
  }
  return c;
}

namespace {
// One DNS-1123 label's characters, without its length bound.
bool label_chars(std::string_view s) {
  if (s.empty()) return false;
  auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char ch : s)
    if (!alnum(ch) && ch != '-') return false;
  return true;
}
}  // namespace

bool valid_dns1123_label(std::string_view s) { return s.size() <= 63 && label_chars(s); }

bool valid_dns1123_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (size_t i = 0;;) {
    size_t dot = s.find('.', i);
    if (!label_chars(s.substr(i, dot == std::string_view::npos ? std::string_view::npos : dot - i)))
      return false;
    if (dot == std::string_view::npos) return true;
    i = dot + 1;
  }
}

}  // namespace tripline::scale_service
