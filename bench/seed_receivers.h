// Fills a store with many receivers at once, for benchmarks and start-up tests of large stores.
#pragma once

#include <string>

#include "status.h"

namespace tripline {

// Inserts `count` dns-update receivers (externaldns-webhook backend at `provider_url`, fixed A
// records "<prefix>-<i>.bench.example.org") into the SQLite store at `db_path` (created and
// migrated if need be), in ONE transaction. Rows are shaped as Store::insert_receiver stores
// them (same columns and JSON text, a random nonce each), so tripline loads them like receivers
// created through the API; they validate without contacting the provider until one is edited
// or triggered. The server must not be running on that store.
Status seed_receivers(const std::string& db_path, int count, const std::string& provider_url,
                      const std::string& prefix = "bench");

}  // namespace tripline
