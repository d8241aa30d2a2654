-- The request log (docs/requests-log.md): every trigger request that named a real receiver (a
-- valid token), whatever came of it, so that an operator can answer "why didn't it fire?".
-- Named "requests" so as not to be confused with the outbound notification deliveries of
-- migrations/013_notifications.sql. Accepted requests are written in the group commit that
-- records their execution; the others by a background writer, in batches, dropped under a flood.
-- Bounded: the newest N rows per receiver (--request-log) and the age of --retention.
-- Secrets never reach this table: headers are redacted, the query string is not kept, and the
-- trigger token is taken out of the body and header values wherever it appears.
CREATE TABLE requests_log (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: executions name it
  receiver_id     INTEGER NOT NULL,
  received_at     INTEGER NOT NULL,
  outcome         TEXT NOT NULL,      -- accepted, ignored, refused, rate_limited, cooling_down,
                                      -- queue_full, malformed, unavailable
  status          INTEGER NOT NULL,   -- the HTTP status answered
  error           TEXT,               -- the error code answered (the one JSON error shape)
  detail          TEXT,               -- JSON: why (rule, compared values, failed check...)
  source          TEXT NOT NULL,      -- the caller (behind trusted proxies: the client)
  method          TEXT NOT NULL,
  headers         TEXT NOT NULL,      -- JSON [[name, value]...], secrets "[redacted]"
  body            TEXT NOT NULL,      -- the body's first bytes (valid UTF-8)
  body_size       INTEGER NOT NULL,   -- the whole body's size in bytes
  body_truncated  INTEGER NOT NULL DEFAULT 0,
  token_redacted  INTEGER NOT NULL DEFAULT 0,  -- the trigger token was in the body or a header
                                               -- value, replaced by "[redacted]"
  execution_id    INTEGER,            -- accepted: the execution it made (or found, a duplicate)
  replay_of       INTEGER             -- a redelivery by hand: the entry it replayed
);
-- "The latest N of a receiver", newest first, and the cap per receiver.
CREATE INDEX requests_log_by_receiver ON requests_log (receiver_id, id);
-- Age retention (the pruner, --retention).
CREATE INDEX requests_log_by_time ON requests_log (received_at);

-- The request that made an execution, and the rule that matched ({"index", "name"}, or NULL for
-- the default / no rules).
ALTER TABLE executions ADD COLUMN request_id INTEGER;
ALTER TABLE executions ADD COLUMN rule TEXT;
