// The client commands: one CLI11 tree (subcommands, --help everywhere, the bash completion is
// generated from it), each leaf a function of the API (docs/api.md) and the global settings.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <set>
#include <thread>

#include "api_client.h"
#include "cli.h"
#include "config.h"
#include "json_limits.h"
#include "output.h"

namespace tripline::cli {

using nlohmann::json;

const char* const kHelpText =
    R"(Client commands (against a running server's API; `tripline COMMAND --help` for each):
  tripline receivers list|get|create|update|delete|enable|disable|rotate|test ...
  tripline executions list|get|retry ...
  tripline tokens create|list|role|revoke ...
  tripline audit list ...
  tripline trigger URL|RECEIVER [--data TEXT | --file FILE] [--wait]
  tripline status
  tripline completion bash          print the bash completion script

Their global flags:
  --server URL            TRIPLINE_SERVER       the server (default http://127.0.0.1:8080)
  --token TOKEN           TRIPLINE_ADMIN_TOKEN  an admin token (prefer the variable or the file:
                                                a flag shows in the process list)
  --config FILE           TRIPLINE_CONFIG       default ~/.config/tripline/config: lines
                                                `server = URL` and `token = TOKEN`, mode 600
  --json                                        the API's JSON as it answered, for scripts
  --timeout SECONDS                             per request (default 30)

Exit codes of the client commands:
  0 ok   1 the API refused (4xx: bad token, invalid input, conflict)   2 usage error
  3 no answer, 5xx or 429 (worth retrying)   4 not found (404)
  5 the server said no: a test's plan failed, an awaited execution failed, not ready
)";

namespace {

constexpr const char* kFooter =
    "Global flags: --server URL, --token TOKEN, --config FILE, --json, --timeout SECONDS "
    "(tripline --help).\nExit codes: 0 ok, 1 API refused (4xx), 2 usage, 3 no answer/5xx/429, "
    "4 not found, 5 check failed (docs/cli.md).";

// A request body read from a file or stdin is held to the server's own body limit.
constexpr size_t kMaxInputBytes = kMaxJsonBytes;

struct Globals {
  std::string server, token, config;
  bool json = false;
  double timeout_s = 30;
};

bool read_input(const std::string& path, std::string* out) {
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "tripline: cannot read %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  out->clear();
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && out->size() <= kMaxInputBytes)
    out->append(buf, n);
  bool failed = std::ferror(f);
  if (f != stdin) std::fclose(f);
  if (failed) {
    std::fprintf(stderr, "tripline: cannot read %s\n", path.c_str());
    return false;
  }
  if (out->size() > kMaxInputBytes) {
    std::fprintf(stderr, "tripline: %s is larger than %zu bytes (the server's body limit)\n",
                 path.c_str(), kMaxInputBytes);
    return false;
  }
  return true;
}

// Prints the API's answer as is (--json) or through `human`.
void emit(const Globals& g, const Reply& r, const std::function<void(const json&)>& human) {
  if (g.json) {
    if (!r.body.empty()) std::printf("%s%s", r.body.c_str(), r.body.back() == '\n' ? "" : "\n");
    return;
  }
  human(r.json);
}

// A member of an answer, or null: a server that is not tripline's may leave anything out, and
// nlohmann's const operator[] must not be asked for a member that is not there.
const json& at(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string yes_no(const json& v) { return v.is_boolean() && v.get<bool>() ? "yes" : "no"; }

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(char(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// A receiver named by id or by name: names are unique, so a name is looked up in the list
// (pages of 500, bounded by the total the server reports).
int receiver_id(const Api& api, const std::string& ref, std::string* id) {
  if (all_digits(ref)) {
    *id = ref;
    return kOk;
  }
  for (int64_t offset = 0;;) {
    Reply r = api.admin("GET", "/receivers?limit=500&offset=" + std::to_string(offset));
    if (r.exit) return r.exit;
    const json& items = r.json["items"];
    if (!items.is_array() || items.empty()) break;
    for (const auto& it : items)
      if (it.value("name", "") == ref) {
        *id = std::to_string(it.value("id", int64_t{0}));
        return kOk;
      }
    offset += int64_t(items.size());
    if (offset >= r.json.value("total", int64_t{0})) break;
  }
  std::fprintf(stderr, "tripline: no receiver named \"%s\"\n", printable(ref).c_str());
  return kNotFound;
}

std::string last_execution(const json& e) {
  if (!e.is_object()) return "-";
  return "#" + cell(at(e, "id")) + " " + cell(at(e, "status"));
}

void print_receiver(const json& r) {
  std::vector<std::pair<std::string, std::string>> f = {{"id", cell(at(r, "id"))},
                                                        {"name", cell(at(r, "name"))},
                                                        {"driver", cell(at(r, "driver"))},
                                                        {"enabled", yes_no(at(r, "enabled"))},
                                                        {"description", cell(at(r, "description"))},
                                                        {"target", cell(at(r, "target"))},
                                                        {"action", cell(at(r, "action"))},
                                                        {"generation", cell(at(r, "generation"))},
                                                        {"trigger_url", cell(at(r, "trigger_url"))},
                                                        {"config", cell(at(r, "config"))}};
  for (const char* k : {"rules", "auth", "limits"})
    if (r.contains(k) && !r[k].is_null()) f.emplace_back(k, cell(r[k]));
  if (r.contains("error")) f.emplace_back("error", cell(at(r, "error")));
  f.emplace_back("last_execution", last_execution(r.value("last_execution", json(nullptr))));
  f.emplace_back("created_at", cell(at(r, "created_at")));
  f.emplace_back("updated_at", cell(at(r, "updated_at")));
  if (r.contains("url_revoked"))
    f.emplace_back("url_revoked", at(r, "url_revoked") == true
                                      ? "yes: the previous trigger URL no longer works"
                                      : "no: the trigger URL is unchanged");
  print_fields(stdout, f);
}

void print_execution(const json& e) {
  print_fields(stdout, {{"id", cell(at(e, "id"))},
                        {"receiver_id", cell(at(e, "receiver_id"))},
                        {"driver", cell(at(e, "driver"))},
                        {"status", cell(at(e, "status"))},
                        {"attempts", cell(at(e, "attempts"))},
                        {"created_at", cell(at(e, "created_at"))},
                        {"started_at", cell(at(e, "started_at"))},
                        {"finished_at", cell(at(e, "finished_at"))},
                        {"next_attempt_at", cell(at(e, "next_attempt_at"))},
                        {"plan", cell(at(e, "plan"))},
                        {"result", cell(at(e, "result"))},
                        {"error", cell(at(e, "error"))}});
}

// --- receivers create/update flags --------------------------------------------------------

struct ReceiverFlags {
  std::string file, name, driver, service, action, backend, url;
  int64_t by = 0, min = 0, max = 0, replicas = 0;
  CLI::Option *by_opt = nullptr, *min_opt = nullptr, *max_opt = nullptr, *replicas_opt = nullptr;
  std::vector<std::string> set;
};

void add_receiver_flags(CLI::App* c, ReceiverFlags& f) {
  c->add_option("-f,--file", f.file,
                "the API's receiver JSON ({\"name\",\"driver\",\"config\",...}; - for stdin); "
                "the flags below change it");
  c->add_option("--name", f.name,
                "the receiver's name (create: SERVICE-ACTION when --service and --action are "
                "given)");
  c->add_option("--service", f.service, "config.service (scale-service: the swarm service)");
  c->add_option("--action", f.action, "config.action (scale-service: up, down or set)");
  f.by_opt = c->add_option("--by", f.by, "config.by (scale-service: replicas per trigger)");
  f.min_opt = c->add_option("--min", f.min, "config.min (scale-service: lower bound)");
  f.max_opt = c->add_option("--max", f.max, "config.max (scale-service: upper bound)");
  f.replicas_opt = c->add_option("--replicas", f.replicas, "config.replicas (action set)");
  c->add_option("--backend", f.backend, "config.backend (scale-service: swarm or kubernetes)");
  c->add_option("--url", f.url, "config.url (webhook: where it posts)");
  c->add_option("--set", f.set,
                "KEY=VALUE: any config field (a.b for nested ones); VALUE is read as JSON when "
                "it is JSON (2, true, {...}), else as text. Secrets given here show in the "
                "process list: prefer --file")
      ->allow_extra_args(false);
}

int apply_receiver_flags(const ReceiverFlags& f, json* body) {
  if (!f.name.empty()) (*body)["name"] = f.name;
  if (!f.driver.empty()) (*body)["driver"] = f.driver;
  json config = body->contains("config") ? (*body)["config"] : json::object();
  if (!config.is_object()) {
    std::fprintf(stderr, "tripline: \"config\" must be an object\n");
    return kUsage;
  }
  auto text = [&](const char* k, const std::string& v) {
    if (!v.empty()) config[k] = v;
  };
  auto number = [&](const char* k, const CLI::Option* o, int64_t v) {
    if (o && o->count() > 0) config[k] = v;
  };
  text("service", f.service);
  text("action", f.action);
  text("backend", f.backend);
  text("url", f.url);
  number("by", f.by_opt, f.by);
  number("min", f.min_opt, f.min);
  number("max", f.max_opt, f.max);
  number("replicas", f.replicas_opt, f.replicas);
  for (const auto& kv : f.set) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "tripline: --set takes KEY=VALUE, got \"%s\"\n", printable(kv).c_str());
      return kUsage;
    }
    std::string value_text = kv.substr(eq + 1);
    auto parsed = parse_json_bounded(value_text);
    json value = parsed.ok() ? parsed.value : json(value_text);
    json* at = &config;
    std::string key = kv.substr(0, eq);
    for (size_t start = 0;;) {
      size_t dot = key.find('.', start);
      std::string part = key.substr(start, dot == std::string::npos ? dot : dot - start);
      if (part.empty()) {
        std::fprintf(stderr, "tripline: --set: empty field name in \"%s\"\n",
                     printable(key).c_str());
        return kUsage;
      }
      if (dot == std::string::npos) {
        (*at)[part] = value;
        break;
      }
      if (!at->contains(part) || !(*at)[part].is_object()) (*at)[part] = json::object();
      at = &(*at)[part];
      start = dot + 1;
    }
  }
  if (!config.empty() || body->contains("config")) (*body)["config"] = config;
  return kOk;
}

int read_body_file(const std::string& path, json* body) {
  std::string text;
  if (!read_input(path, &text)) return kUsage;
  auto parsed = parse_json_bounded(text);
  if (!parsed.ok() || !parsed.value.is_object()) {
    std::fprintf(stderr, "tripline: %s: not a JSON object%s%s\n", path.c_str(),
                 parsed.ok() ? "" : ": ", parsed.ok() ? "" : parsed.why().c_str());
    return kUsage;
  }
  *body = std::move(parsed.value);
  return kOk;
}

// Polls an execution until it succeeded or failed, for at most `timeout`.
int wait_execution(const Globals& g, const Api& api, const std::string& id) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(g.timeout_s * 1000));
  for (;;) {
    Reply r = api.admin("GET", "/executions/" + id);
    if (r.exit) return r.exit;
    std::string status = r.json.value("status", "");
    bool done = status == "succeeded" || status == "failed";
    if (done || std::chrono::steady_clock::now() >= deadline) {
      emit(g, r, print_execution);
      if (!done) {
        std::fprintf(stderr, "tripline: execution %s still %s after %g s\n", id.c_str(),
                     printable(status).c_str(), g.timeout_s);
        return kUnavailable;
      }
      return status == "succeeded" ? kOk : kCheckFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// --- bash completion, generated from the command tree ---------------------------------------

void collect(const CLI::App* app, const std::string& path,
             std::vector<std::pair<std::string, std::string>>* words,
             std::vector<std::pair<std::string, std::string>>* edges,
             std::set<std::string>* takes_value, const std::string& global_words) {
  std::string w;
  auto subs = app->get_subcommands([](const CLI::App*) { return true; });
  for (const CLI::App* s : subs) {
    w += (w.empty() ? "" : " ") + s->get_name();
    edges->emplace_back(path + "|" + s->get_name(),
                        path.empty() ? s->get_name() : path + " " + s->get_name());
  }
  for (const CLI::Option* o : app->get_options()) {
    if (!o->nonpositional()) continue;
    for (const auto& l : o->get_lnames()) {
      if (o->get_items_expected_min() > 0) takes_value->insert("--" + l);
      if (path.empty() || global_words.find("--" + l) == std::string::npos)
        w += (w.empty() ? "" : " ") + ("--" + l);
    }
    for (const auto& s : o->get_snames())
      if (o->get_items_expected_min() > 0) takes_value->insert("-" + s);
  }
  if (!path.empty()) w += " " + global_words;
  words->emplace_back(path, w);
  for (const CLI::App* s : subs)
    collect(s, path.empty() ? s->get_name() : path + " " + s->get_name(), words, edges, takes_value,
            global_words);
}

std::string bash_completion(const CLI::App& app) {
  // The global flags fall through to every subcommand: offered at every level.
  std::string globals;
  for (const CLI::Option* o : app.get_options())
    for (const auto& l : o->get_lnames())
      if (l != "help") globals += (globals.empty() ? "--" : " --") + l;
  std::vector<std::pair<std::string, std::string>> words, edges;
  std::set<std::string> takes_value;
  collect(&app, "", &words, &edges, &takes_value, globals);
  // main.cpp's commands, which are not in this tree (past them: --help).
  for (auto& [path, w] : words)
    if (path.empty()) w = "serve rotate-signing-key rotate-secret-key " + w + " --version";
  for (const char* c : {"serve", "rotate-signing-key", "rotate-secret-key"})
    edges.emplace_back(std::string("|") + c, c);

  std::string s =
      "# bash completion for tripline, generated by `tripline completion bash`.\n"
      "# Load it with: source <(tripline completion bash)\n"
      "_tripline() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  local path=\"\" i w words\n"
      "  case \"$prev\" in\n"
      "    --file|-f|--config) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n";
  std::string value_flags;
  for (const auto& v : takes_value) value_flags += (value_flags.empty() ? "" : "|") + v;
  s += "    " + value_flags + ") COMPREPLY=(); return ;;\n  esac\n";
  s += "  for ((i = 1; i < COMP_CWORD; i++)); do\n    w=\"${COMP_WORDS[i]}\"\n";
  s += "    case \"$w\" in\n      " + value_flags + ") ((i++)); continue ;;\n    esac\n";
  s += "    case \"$path|$w\" in\n";
  for (const auto& [from, to] : edges) s += "      \"" + from + "\") path=\"" + to + "\" ;;\n";
  s += "    esac\n  done\n  case \"$path\" in\n";
  for (const auto& [path, w] : words) s += "    \"" + path + "\") words=\"" + w + "\" ;;\n";
  s += "    *) words=\"--help\" ;;\n  esac\n";
  s += "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n";
  s += "complete -F _tripline tripline\n";
  return s;
}

}  // namespace

bool is_client_command(std::string_view c) {
  if (c == "receivers" || c == "executions" || c == "tokens" || c == "audit" || c == "trigger" ||
      c == "status" || c == "completion")
    return true;
  // The global flags may come first: `tripline --server URL receivers list`.
  for (std::string_view flag : {"--server", "--token", "--config", "--json", "--timeout"})
    if (c == flag ||
        (c.size() > flag.size() && c.substr(0, flag.size()) == flag && c[flag.size()] == '='))
      return true;
  return false;
}

int run(int argc, char** argv) {
  Globals g;
  CLI::App app{"tripline: client commands against a running server's API", "tripline"};
  app.fallthrough();  // global flags may follow the subcommand
  app.require_subcommand(1);
  app.add_option("--server", g.server,
                 "the server's URL (TRIPLINE_SERVER; default " + std::string(kDefaultServer) + ")");
  app.add_option("--token", g.token, "an admin token (TRIPLINE_ADMIN_TOKEN; or the config file)");
  app.add_option("--config", g.config, "config file (TRIPLINE_CONFIG; ~/.config/tripline/config)");
  app.add_flag("--json", g.json, "print the API's JSON answer as it is");
  app.add_option("--timeout", g.timeout_s, "seconds per request (default 30)")
      ->check(CLI::Range(0.1, 3600.0));

  // Each leaf command: its CLI11 node and what it does. `api` is null for `completion`.
  struct Leaf {
    CLI::App* cmd;
    std::function<int(const Api&)> run;
  };
  std::vector<Leaf> leaves;
  auto leaf = [&](CLI::App* parent, const char* name, const char* help,
                  std::function<int(const Api&)> fn) {
    CLI::App* c = parent->add_subcommand(name, help);
    leaves.push_back({c, std::move(fn)});
    return c;
  };

  // --- receivers ---
  CLI::App* receivers = app.add_subcommand("receivers", "list, create, change and test receivers");
  receivers->require_subcommand(1);
  std::string rid;
  int64_t limit = 50, offset = 0;
  bool all = false;
  CLI::App* c =
      leaf(receivers, "list", "list receivers (a page; --all for every one)", [&](const Api& api) {
        json merged;
        Reply r;
        for (int64_t off = offset;;) {
          r = api.admin("GET", "/receivers?limit=" + std::to_string(all ? 500 : limit) +
                                   "&offset=" + std::to_string(off));
          if (r.exit) return r.exit;
          if (!all) break;
          if (merged.is_null())
            merged = r.json;
          else
            for (auto& it : r.json["items"]) merged["items"].push_back(it);
          off += int64_t(r.json["items"].size());
          if (r.json["items"].empty() || off >= r.json.value("total", int64_t{0})) break;
        }
        if (all) {
          merged["limit"] = merged["items"].size();
          r.json = merged;
          r.body = merged.dump();
        }
        emit(g, r, [&](const json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& it : at(j, "items"))
            rows.push_back({cell(at(it, "id")), cell(at(it, "name")), cell(at(it, "driver")),
                            yes_no(at(it, "enabled")), cell(it.value("target", json(nullptr))),
                            cell(it.value("action", json(nullptr))),
                            last_execution(it.value("last_execution", json())),
                            cell(it.value("description", it.value("error", json())), 60)});
          print_table(
              stdout,
              {"ID", "NAME", "DRIVER", "ENABLED", "TARGET", "ACTION", "LAST", "DESCRIPTION"}, rows);
          int64_t shown = j.value("offset", int64_t{0}) + int64_t(rows.size());
          if (shown < j.value("total", int64_t{0}))
            std::fprintf(stderr, "(%lld of %lld; next page: --offset %lld)\n",
                         (long long)rows.size(), (long long)j.value("total", 0LL),
                         (long long)shown);
        });
        return int(kOk);
      });
  c->add_option("--limit", limit, "receivers per page (1..500)")->check(CLI::Range(1, 500));
  c->add_option("--offset", offset, "receivers to skip")->check(CLI::NonNegativeNumber);
  c->add_flag("--all", all, "every receiver, page after page");

  c = leaf(receivers, "get", "show one receiver", [&](const Api& api) {
    std::string id;
    if (int e = receiver_id(api, rid, &id)) return e;
    Reply r = api.admin("GET", "/receivers/" + id);
    if (r.exit) return r.exit;
    emit(g, r, print_receiver);
    return int(kOk);
  });
  c->add_option("receiver", rid, "id or name")->required();

  ReceiverFlags create_flags;
  bool create_disabled = false;
  c = leaf(receivers, "create", "create a receiver from the API's JSON or from flags",
           [&](const Api& api) {
             json body = json::object();
             if (!create_flags.file.empty())
               if (int e = read_body_file(create_flags.file, &body)) return e;
             if (int e = apply_receiver_flags(create_flags, &body)) return e;
             // Unnamed, a scaling receiver is named after what it does ("web-up"), as the
             // issue's one-liner expects; anything else must be named.
             if (!body.contains("name") && body.contains("config") &&
                 body["config"].value("service", "") != "" &&
                 body["config"].value("action", "") != "")
               body["name"] =
                   body["config"].value("service", "") + "-" + body["config"].value("action", "");
             if (create_disabled) body["enabled"] = false;
             Reply r = api.admin("POST", "/receivers", &body);
             if (r.exit) return r.exit;
             emit(g, r, print_receiver);
             return int(kOk);
           });
  add_receiver_flags(c, create_flags);
  c->add_option("--driver", create_flags.driver,
                "the driver: scale-service, dns-update, webhook (GET /api/v1/drivers)");
  c->add_flag("--disabled", create_disabled, "create it disabled");
  c->footer(std::string("Example: tripline receivers create --name web-up --driver scale-service "
                        "--service web --action up --by 2 --max 5\n") +
            kFooter);

  ReceiverFlags update_flags;
  bool dry_run = false;
  c = leaf(receivers, "update",
           "change a receiver: --file replaces it (PUT), flags change the current one",
           [&](const Api& api) {
             std::string id;
             if (int e = receiver_id(api, rid, &id)) return e;
             json body = json::object();
             std::string if_match;  // the version read, so a change made since is not undone
             if (!update_flags.file.empty()) {
               if (int e = read_body_file(update_flags.file, &body)) return e;
             } else {
               // PUT replaces the receiver: start from what it is now. Secrets come back as
               // "********", which the API reads as "keep the stored value".
               Reply cur = api.admin("GET", "/receivers/" + id);
               if (cur.exit) return cur.exit;
               // "enabled" is left out: the API then keeps the state it finds, so an update never
               // undoes a disable made since this read.
               for (const char* k : {"name", "config", "rules", "auth", "limits"})
                 if (cur.json.contains(k) && !cur.json[k].is_null()) body[k] = cur.json[k];
               if (cur.json.contains("version") && cur.json["version"].is_number_integer())
                 if_match = "\"" + std::to_string(cur.json["version"].get<int64_t>()) + "\"";
             }
             if (int e = apply_receiver_flags(update_flags, &body)) return e;
             Reply r = api.admin("PUT", "/receivers/" + id + (dry_run ? "?dry_run=true" : ""),
                                 &body, if_match);
             if (r.exit) return r.exit;
             emit(g, r, [&](const json& j) {
               if (!dry_run) return print_receiver(j);
               print_fields(stdout,
                            {{"valid", yes_no(at(j, "valid"))},
                             {"description", cell(at(j, "description"))},
                             {"url_revoked", at(j, "url_revoked") == true
                                                 ? "yes: saving would revoke the trigger URL"
                                                 : "no: saving keeps the trigger URL"}});
             });
             return int(kOk);
           });
  c->add_option("receiver", rid, "id or name")->required();
  add_receiver_flags(c, update_flags);
  c->add_flag("--dry-run", dry_run, "check the change and say what saving would do; save nothing");

  c = leaf(receivers, "delete", "delete a receiver; its trigger URL stops working for good",
           [&](const Api& api) {
             std::string id;
             if (int e = receiver_id(api, rid, &id)) return e;
             Reply r = api.admin("DELETE", "/receivers/" + id);
             if (r.exit) return r.exit;
             if (!g.json) std::printf("deleted receiver %s\n", id.c_str());
             return int(kOk);
           });
  c->add_option("receiver", rid, "id or name")->required();

  for (const char* verb : {"enable", "disable", "rotate"}) {
    const char* help = std::string(verb) == "enable"
                           ? "enable a receiver: its current trigger URL works"
                       : std::string(verb) == "disable"
                           ? "disable a receiver: the URL in use is revoked (401 from now on)"
                           : "issue a new trigger URL; the old one stops working";
    c = leaf(receivers, verb, help, [&, verb](const Api& api) {
      std::string id;
      if (int e = receiver_id(api, rid, &id)) return e;
      Reply r = api.admin("POST", "/receivers/" + id + "/" + verb);
      if (r.exit) return r.exit;
      emit(g, r, print_receiver);
      return int(kOk);
    });
    c->add_option("receiver", rid, "id or name")->required();
  }

  c = leaf(receivers, "test",
           "dry run: the driver's plan against its peer, nothing changed (exit 5 when it fails)",
           [&](const Api& api) {
             std::string id;
             if (int e = receiver_id(api, rid, &id)) return e;
             Reply r = api.admin("POST", "/receivers/" + id + "/test");
             if (r.exit) return r.exit;
             emit(g, r, [&](const json& j) {
               if (j.value("ok", false))
                 print_fields(stdout, {{"ok", "yes"},
                                       {"description", cell(at(j, "description"))},
                                       {"plan", cell(at(j, "plan"))}});
               else
                 print_fields(stdout, {{"ok", "no"},
                                       {"retryable", yes_no(at(j, "retryable"))},
                                       {"error", cell(at(j, "error"))}});
             });
             return r.json.value("ok", false) ? int(kOk) : int(kCheckFailed);
           });
  c->add_option("receiver", rid, "id or name")->required();

  // --- executions ---
  CLI::App* executions = app.add_subcommand("executions", "list, show and retry executions");
  executions->require_subcommand(1);
  std::string exec_receiver, exec_status, exec_id;
  int64_t exec_limit = 50, exec_before = 0;
  bool wait = false;
  c = leaf(executions, "list", "executions, newest first", [&](const Api& api) {
    std::string q = "?limit=" + std::to_string(exec_limit);
    if (exec_before > 0) q += "&before=" + std::to_string(exec_before);
    if (!exec_status.empty()) q += "&status=" + url_encode(exec_status);
    if (!exec_receiver.empty()) {
      std::string id;
      if (int e = receiver_id(api, exec_receiver, &id)) return e;
      q += "&receiver_id=" + id;
    }
    Reply r = api.admin("GET", "/executions" + q);
    if (r.exit) return r.exit;
    emit(g, r, [&](const json& j) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& e : at(j, "items"))
        rows.push_back({cell(at(e, "id")), cell(at(e, "receiver_id")), cell(at(e, "status")),
                        cell(at(e, "attempts")), cell(at(e, "created_at")),
                        cell(at(e, "finished_at")), cell(at(e, "error"), 60)});
      print_table(stdout, {"ID", "RECEIVER", "STATUS", "ATTEMPTS", "CREATED", "FINISHED", "ERROR"},
                  rows);
      if (!at(j, "next_before").is_null())
        std::fprintf(stderr, "(next page: --before %s)\n", cell(at(j, "next_before")).c_str());
    });
    return int(kOk);
  });
  c->add_option("--receiver", exec_receiver, "only this receiver's (id or name)");
  c->add_option("--status", exec_status, "queued, running, succeeded or failed");
  c->add_option("--limit", exec_limit, "executions per page (1..500)")->check(CLI::Range(1, 500));
  c->add_option("--before", exec_before, "only executions older than this id (paging)")
      ->check(CLI::PositiveNumber);

  c = leaf(executions, "get", "show one execution", [&](const Api& api) {
    if (wait) return wait_execution(g, api, exec_id);
    Reply r = api.admin("GET", "/executions/" + exec_id);
    if (r.exit) return r.exit;
    emit(g, r, print_execution);
    return int(kOk);
  });
  c->add_option("id", exec_id, "execution id")->required()->check(CLI::PositiveNumber);
  c->add_flag("--wait", wait,
              "wait until it succeeded (exit 0) or failed (exit 5), at most --timeout seconds "
              "(then exit 3)");

  bool retry_wait = false;
  c = leaf(executions, "retry",
           "run a failed execution again, as a new one with the same recorded request",
           [&](const Api& api) {
             Reply r = api.admin("POST", "/executions/" + exec_id + "/retry");
             if (r.exit) return r.exit;
             std::string again = cell(r.json["execution_id"]);
             if (retry_wait) {
               if (!g.json)
                 std::fprintf(stderr, "execution %s retries %s; waiting\n", again.c_str(),
                              exec_id.c_str());
               return wait_execution(g, api, again);
             }
             emit(g, r, [&](const json& j) {
               std::printf("execution %s %s (retry of %s)\n", again.c_str(),
                           j.value("replayed", false) ? "made by an earlier retry" : "queued",
                           exec_id.c_str());
             });
             return int(kOk);
           });
  c->add_option("id", exec_id, "the failed execution's id")->required()->check(CLI::PositiveNumber);
  c->add_flag("--wait", retry_wait,
              "wait for the new execution: exit 0 succeeded, 5 failed, 3 still running after "
              "--timeout");

  // --- tokens ---
  CLI::App* tokens = app.add_subcommand("tokens", "admin tokens");
  tokens->require_subcommand(1);
  std::string token_name, token_id, token_role = "admin";
  const std::vector<std::string> kRoles = {"admin", "operator", "read-only"};
  c = leaf(tokens, "create", "create an admin token; it is shown only this once",
           [&](const Api& api) {
             json body = {{"name", token_name}, {"role", token_role}};
             Reply r = api.admin("POST", "/tokens", &body);
             if (r.exit) return r.exit;
             emit(g, r, [&](const json& j) {
               print_fields(stdout, {{"id", cell(at(j, "id"))},
                                     {"name", cell(at(j, "name"))},
                                     {"role", cell(at(j, "role"))},
                                     {"token", cell(at(j, "token"))}});
               std::fprintf(stderr, "store this token now: it is not shown again\n");
             });
             return int(kOk);
           });
  c->add_option("name", token_name, "what the token is for (1 to 100 characters)")->required();
  c->add_option("--role", token_role,
                "admin (everything; the default), operator (reads, tests, enable/disable, "
                "retries, pause/resume) or read-only (reads)")
      ->check(CLI::IsMember(kRoles));
  leaf(tokens, "list", "admin tokens (names, ids and roles; never the tokens)",
       [&](const Api& api) {
         Reply r = api.admin("GET", "/tokens");
         if (r.exit) return r.exit;
         emit(g, r, [&](const json& j) {
           std::vector<std::vector<std::string>> rows;
           for (const auto& t : at(j, "items"))
             rows.push_back({cell(at(t, "id")), cell(at(t, "name")), cell(at(t, "role")),
                             cell(at(t, "created_at"))});
           print_table(stdout, {"ID", "NAME", "ROLE", "CREATED"}, rows);
         });
         return int(kOk);
       });
  std::string new_role;
  c = leaf(tokens, "role", "give a token another role (the last admin stays an admin)",
           [&](const Api& api) {
             json body = {{"role", new_role}};
             Reply r = api.admin("PUT", "/tokens/" + token_id, &body);
             if (r.exit) return r.exit;
             if (!g.json)
               std::printf("token %s is now %s\n", token_id.c_str(), new_role.c_str());
             else
               emit(g, r, [](const json&) {});
             return int(kOk);
           });
  c->add_option("id", token_id, "token id (tripline tokens list)")
      ->required()
      ->check(CLI::PositiveNumber);
  c->add_option("role", new_role, "admin, operator or read-only")
      ->required()
      ->check(CLI::IsMember(kRoles));
  c = leaf(tokens, "revoke", "revoke an admin token (the last admin cannot be revoked)",
           [&](const Api& api) {
             Reply r = api.admin("DELETE", "/tokens/" + token_id);
             if (r.exit) return r.exit;
             if (!g.json) std::printf("revoked token %s\n", token_id.c_str());
             return int(kOk);
           });
  c->add_option("id", token_id, "token id (tripline tokens list)")
      ->required()
      ->check(CLI::PositiveNumber);

  // --- audit ---
  CLI::App* audit = app.add_subcommand("audit", "the audit log of management changes");
  audit->require_subcommand(1);
  std::string audit_target;
  int64_t audit_limit = 50, audit_before = 0;
  c = leaf(
      audit, "list", "management changes, newest first (who, what, before -> after)",
      [&](const Api& api) {
        std::string q = "?limit=" + std::to_string(audit_limit);
        if (audit_before > 0) q += "&before=" + std::to_string(audit_before);
        if (!audit_target.empty()) q += "&target=" + url_encode(audit_target);
        Reply r = api.admin("GET", "/audit" + q);
        if (r.exit) return r.exit;
        emit(g, r, [&](const json& j) {
          std::vector<std::vector<std::string>> rows;
          for (const auto& e : at(j, "items")) {
            const json& t = at(e, "target");
            std::string target = cell(at(t, "type"));
            if (!at(t, "id").is_null()) target += ":" + cell(at(t, "id"));
            if (!cell(at(t, "name")).empty()) target += " " + cell(at(t, "name"));
            rows.push_back({cell(at(e, "id")), cell(at(e, "at")), cell(at(at(e, "actor"), "name")),
                            cell(at(e, "source")), cell(at(e, "action")), cell(target, 40)});
          }
          print_table(stdout, {"ID", "AT", "BY", "FROM", "ACTION", "TARGET"}, rows);
          if (!at(j, "next_before").is_null())
            std::fprintf(stderr, "(next page: --before %s; --json shows before and after)\n",
                         cell(at(j, "next_before")).c_str());
        });
        return int(kOk);
      });
  c->add_option("--target", audit_target,
                "only this kind of target (receiver, subscription, delivery, request, execution, "
                "token, workers) or this one (receiver:12)");
  c->add_option("--limit", audit_limit, "rows per page (1..500)")->check(CLI::Range(1, 500));
  c->add_option("--before", audit_before, "only rows older than this id (paging)")
      ->check(CLI::PositiveNumber);

  // --- trigger ---
  std::string target, data, data_file, idempotency_key, content_type = "application/json";
  std::vector<std::string> headers;
  bool trigger_wait = false;
  c = leaf(
      &app, "trigger", "send a trigger, as Alertmanager or a CI job would", [&](const Api& api) {
        std::string url = target;
        if (target.find("://") != std::string::npos && target.rfind("http://", 0) != 0 &&
            target.rfind("https://", 0) != 0) {
          std::fprintf(stderr, "tripline: a trigger URL is http:// or https://\n");
          return int(kUsage);
        }
        if (target.find("://") == std::string::npos && target.rfind("/", 0) != 0) {
          std::string id;  // a receiver: its current trigger URL, from the API
          if (int e = receiver_id(api, target, &id)) return e;
          Reply r = api.admin("GET", "/receivers/" + id);
          if (r.exit) return r.exit;
          const json& u = r.json.contains("trigger_url") ? r.json["trigger_url"] : json();
          if (!u.is_string()) {
            std::fprintf(stderr,
                         "tripline: the API shows trigger URLs to admin tokens only; trigger "
                         "with an admin token, or give the URL\n");
            return int(kRefused);
          }
          url = u.get<std::string>();
        }
        // --wait reads the execution from --server's API: a URL given of another server names
        // an execution there, whose number means nothing here. (A receiver's own URL, read
        // from the API, is this server's, behind whatever public address it has.)
        const std::string& server = api.settings().server;
        if (trigger_wait && target.find("://") != std::string::npos &&
            target.compare(0, server.size() + 1, server + "/") != 0) {
          std::fprintf(stderr,
                       "tripline: --wait follows the execution on %s, and this URL is not on it: "
                       "name the receiver, or give the URL's path\n",
                       printable(server).c_str());
          return int(kUsage);
        }
        std::string body = data;
        if (!data_file.empty() && !read_input(data_file, &body)) return int(kUsage);
        std::vector<std::pair<std::string, std::string>> h;
        if (!body.empty()) h.emplace_back("Content-Type", content_type);
        if (!idempotency_key.empty()) h.emplace_back("Idempotency-Key", idempotency_key);
        for (const auto& line : headers) {
          size_t colon = line.find(':');
          if (colon == std::string::npos || colon == 0) {
            std::fprintf(stderr, "tripline: -H takes 'Name: value', got \"%s\"\n",
                         printable(line).c_str());
            return int(kUsage);
          }
          size_t v = line.find_first_not_of(' ', colon + 1);
          h.emplace_back(line.substr(0, colon), v == std::string::npos ? "" : line.substr(v));
        }
        Reply r = api.call("POST", url, body, std::move(h), /*with_token=*/false);
        if (r.exit) return r.exit;
        if (trigger_wait && r.json.contains("execution_id")) {
          if (!r.json["execution_id"].is_number_integer()) {
            std::fprintf(stderr, "tripline: the answer's execution_id is not a number\n");
            return int(kUnavailable);
          }
          if (!g.json)
            std::fprintf(stderr, "execution %s %s; waiting\n", cell(r.json["execution_id"]).c_str(),
                         r.json.value("replayed", false) ? "(replayed)" : "queued");
          return wait_execution(g, api, cell(r.json["execution_id"]));
        }
        emit(g, r, [&](const json& j) {
          if (j.value("ignored", false)) {
            std::printf("ignored: %s\n", cell(at(j, "reason")).c_str());
            return;
          }
          std::printf("execution %s %s (receiver %s)\n", cell(at(j, "execution_id")).c_str(),
                      j.value("replayed", false) ? "replayed: an earlier request made it"
                                                 : cell(at(j, "status")).c_str(),
                      cell(at(j, "receiver_id")).c_str());
        });
        return int(kOk);
      });
  c->add_option("target", target,
                "the trigger URL (or its path on --server), or a receiver's id or name (its URL "
                "is read with the admin token)")
      ->required();
  auto* data_opt = c->add_option("-d,--data", data, "the request body");
  c->add_option("--file", data_file, "the request body from a file (- for stdin)")
      ->excludes(data_opt);
  c->add_option("-H,--header", headers, "'Name: value', repeatable")->allow_extra_args(false);
  c->add_option("--idempotency-key", idempotency_key,
                "a repeat with the same key answers the first execution");
  c->add_option("--content-type", content_type, "of the body (default application/json)");
  c->add_flag("--wait", trigger_wait,
              "wait for the execution to finish: exit 0 succeeded, 5 failed, 3 still running "
              "after --timeout (needs the admin token)");

  // --- status ---
  leaf(&app, "status", "is the server up and ready; its checks and workers (exit 5: not ready)",
       [&](const Api& api) {
         Reply health = api.call("GET", "/healthz", "", {}, false);
         if (health.exit) return health.exit;
         bool admin = !api.settings().token.empty();
         Reply ready = api.call("GET", "/readyz", "", {}, admin, 503);
         if (ready.exit) return ready.exit;
         Reply workers;
         if (admin) {
           workers = api.admin("GET", "/workers");
           if (workers.exit) return workers.exit;
         }
         bool is_ready = ready.status == 200;
         if (g.json) {
           json out = {{"server", api.settings().server},
                       {"healthz", health.json},
                       {"readyz", ready.json},
                       {"workers", admin ? workers.json : json(nullptr)}};
           std::printf("%s\n", out.dump().c_str());
         } else {
           std::vector<std::pair<std::string, std::string>> f = {
               {"server", printable(api.settings().server)},
               {"health", cell(health.json.value("status", json()))},
               {"ready", cell(ready.json.value("status", json()))}};
           if (ready.json.contains("checks") && ready.json["checks"].is_object())
             for (const auto& [k, v] : ready.json["checks"].items())
               f.emplace_back("check " + printable(k), cell(v));
           if (admin) {
             f.emplace_back("workers", workers.json.value("paused", false) ? "paused" : "running");
             f.emplace_back("queue_depth", cell(workers.json["queue_depth"]));
           } else {
             f.emplace_back("workers", "(needs the admin token)");
           }
           print_fields(stdout, f);
         }
         return is_ready ? int(kOk) : int(kCheckFailed);
       });

  // --- completion ---
  CLI::App* completion = app.add_subcommand("completion", "print a shell completion script");
  completion->require_subcommand(1);
  CLI::App* bash = completion->add_subcommand(
      "bash",
      "the bash completion script: source <(tripline completion bash), or save it in "
      "/usr/share/bash-completion/completions/tripline");

  // Every command's --help ends with the global flags and the exit codes.
  std::function<void(CLI::App*)> footers = [&](CLI::App* a) {
    if (a->get_footer().empty()) a->footer(kFooter);
    for (CLI::App* s : a->get_subcommands([](CLI::App*) { return true; })) footers(s);
  };
  footers(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // prints the help of the command asked about; 0
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);  // prints what was wrong and "Run with --help for more information."
    return kUsage;
  }

  if (bash->parsed()) {
    std::fputs(bash_completion(app).c_str(), stdout);
    return kOk;
  }
  auto settings = resolve_settings(g.server, g.token, g.config);
  if (!settings.ok()) {
    std::fprintf(stderr, "tripline: %s\n", settings.status().message().c_str());
    return kUsage;
  }
  Api api(*settings, std::chrono::milliseconds(int64_t(g.timeout_s * 1000)));
  for (const Leaf& l : leaves) {
    if (!l.cmd->parsed()) continue;
    try {
      return l.run(api);
    } catch (const nlohmann::json::exception& e) {
      // An answer of the wrong shape (a member of another type): not a tripline server's.
      std::fprintf(stderr, "tripline: the server's answer is not what tripline answers: %s\n",
                   e.what());
      return kUnavailable;
    }
  }
  std::fprintf(stderr, "tripline: no command given; see tripline --help\n");
  return kUsage;
}

}  // namespace tripline::cli
