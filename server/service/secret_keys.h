// The secrets key against the stored data (trust 10c): every sealed value tripline will need
// must open with the configured keys, checked at start-up, and rotation re-seals everything under
// the current key so the previous one can be forgotten. Formats and key sources: secrets.h.
// Procedure: docs/secret-keys.md.
//
// Thread safety: call before serving (start-up) or from the offline rotate command.
#pragma once

#include <string>

#include "registry.h"
#include "schema.h"
#include "secrets.h"
#include "status.h"
#include "store.h"

namespace tripline {

// Opens every sealed secret of every receiver (config and auth) and of every queued or running
// execution. Internal, naming how many values fail, where, which key ids they were sealed with
// and which are configured, when any does not open: tripline must not start then, or receivers
// would vanish from lists and queued executions fail.
Status check_sealed_data(Store& store, const DriverRegistry& drivers, const SecretBox& box);

struct ResealReport {
  int values = 0;  // sealed values rewritten under the current key
  int rows = 0;    // texts (receiver config/auth, execution config) rewritten
};
// Re-seals every sealed value that is not under the current key (v1 values, values under a
// previous key), finished executions included, in ONE transaction: afterwards no previous key is
// needed. Nothing is written when any value does not open (Internal, as check_sealed_data).
Result<ResealReport> reseal_all(Store& store, const DriverRegistry& drivers, const SecretBox& box);
// A shared store's signing keys (docs/scale-out.md), sealed values too: each must open with
// `box`; with `reseal`, those not under its current key are stored re-sealed. Answers how many
// were (or would be) re-sealed; 0 for a store that is not shared.
Result<int> reseal_signing_keys(Store& store, const SecretBox& box, bool reseal);

// `tripline rotate-secret-key`. With TRIPLINE_SECRET_KEY set (`env_key`), the operator chose the
// new key: everything is re-sealed under it (old values opened with TRIPLINE_SECRET_KEY_PREVIOUS).
// Otherwise a new key is generated: the old one is appended to DATA_DIR/secrets.key.previous, the
// new one replaces DATA_DIR/secrets.key, everything is re-sealed, and secrets.key.previous is
// removed. Run it with the server stopped. Answers a line for the operator. `database`: the
// store (ServiceOptions::database); empty: DATA_DIR/tripline.db.
Result<std::string> rotate_secret_key(const std::string& data_dir, const DriverEnv& env,
                                      const char* env_key, const char* env_previous,
                                      const std::string& database = "");

// `tripline rotate-signing-key`: a new newest key in DATA_DIR/keys (token.h) and, when `database`
// is a shared store (docs/scale-out.md), in the database too, sealed with the secrets key
// (env_key, else DATA_DIR/secrets.key), for every replica. Answers a line for the operator.
Result<std::string> rotate_signing_key(const std::string& data_dir, const char* env_key,
                                       const char* env_previous, const std::string& database);

}  // namespace tripline
