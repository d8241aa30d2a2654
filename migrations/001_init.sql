-- Receivers: what an operator configured. The trigger token signs (id, generation, driver,
-- target, action); bumping generation revokes every URL issued before.
CREATE TABLE receivers (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  driver      TEXT NOT NULL,
  config      TEXT NOT NULL,              -- JSON, validated by the driver
  enabled     INTEGER NOT NULL DEFAULT 1,
  generation  INTEGER NOT NULL DEFAULT 1,
  created_at  INTEGER NOT NULL,           -- milliseconds since the Unix epoch
  updated_at  INTEGER NOT NULL
);

-- Executions: one accepted trigger each. The config is a snapshot, so an execution does what the
-- URL said when it was accepted even if the receiver is edited later. `plan` is the absolute
-- desired state, recorded before the driver changes anything; recovery re-applies it.
CREATE TABLE executions (
  id               INTEGER PRIMARY KEY,
  receiver_id      INTEGER NOT NULL,
  generation       INTEGER NOT NULL,
  driver           TEXT NOT NULL,
  config           TEXT NOT NULL,
  idempotency_key  TEXT,
  status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  plan             TEXT,
  result           TEXT,
  error            TEXT,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  next_attempt_at  INTEGER
);
CREATE INDEX executions_by_receiver ON executions (receiver_id, id);
CREATE INDEX executions_unfinished ON executions (status, id) WHERE status IN ('queued', 'running');
CREATE UNIQUE INDEX executions_idempotency ON executions (receiver_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Management API credentials, stored as SHA-256 of 256-bit random tokens.
CREATE TABLE admin_tokens (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  token_hash  BLOB NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
);
