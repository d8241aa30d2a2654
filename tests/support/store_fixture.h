// What the store and executor unit tests share: a temporary directory, receivers that executions
// can be recorded for, and batches of executions as the ingest hands them to insert_executions().
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "store.h"

namespace tripline::test {

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tl-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// Executions are recorded only for a receiver that still grants them: receivers 1..n (those not
// there yet), named r1..rn.
inline void make_receivers(Store& store, int n, const std::string& driver = "scale-service") {
  for (int i = 1; i <= n; ++i) {
    if (store.get_receiver(i).ok()) continue;
    ReceiverRow row;
    row.name = "r" + std::to_string(i);
    row.driver = driver;
    row.config = nlohmann::json::object();
    REQUIRE(store.insert_receiver(row).ok());
  }
}

// n executions of one receiver at generation 1, config "{}". The strings the rows point at live
// here, so a batch is neither copied nor moved. An empty action leaves the rows' action unset.
struct Executions {
  std::string driver, config = "{}", action;
  std::vector<NewExecution> rows;

  Executions(int64_t receiver_id, int n, int64_t created_at,
             std::string driver_name = "scale-service", std::string action_name = "")
      : driver(std::move(driver_name)), action(std::move(action_name)), rows(n) {
    for (auto& e : rows) {
      e.receiver_id = receiver_id;
      e.generation = 1;
      e.driver = &driver;
      e.config = &config;
      if (!action.empty()) e.action = &action;
      e.created_at = created_at;
    }
  }
  Executions(const Executions&) = delete;
  Executions& operator=(const Executions&) = delete;

  // Inserts the rows (ids, replayed and revoked filled in).
  Status insert(Store& store) { return store.insert_executions(rows); }
  std::vector<int64_t> ids() const {
    std::vector<int64_t> out;
    for (const auto& e : rows) out.push_back(e.id);
    return out;
  }
};

}  // namespace tripline::test
