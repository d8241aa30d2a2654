-- Execution notifications (docs/webhooks.md): a receiver's subscribers are told when one of its
-- executions changes status. Deliveries are not executions: they have their own table, written
-- in the same transaction as the status change they announce, so none is lost to a crash.
CREATE TABLE subscriptions (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  receiver_id      INTEGER NOT NULL,
  url              TEXT NOT NULL,
  secrets          TEXT NOT NULL,             -- JSON {"secret", "previous_secret"}, sealed
  scheme           TEXT NOT NULL DEFAULT 'standard' CHECK (scheme IN ('standard', 'seed-002')),
  events           TEXT NOT NULL,             -- JSON array: running, succeeded, failed, retrying
  enabled          INTEGER NOT NULL DEFAULT 1,
  disabled_reason  TEXT,                      -- why tripline disabled it (a 410 Gone)
  dropped          INTEGER NOT NULL DEFAULT 0,  -- notifications not recorded: backlog full
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX subscriptions_by_receiver ON subscriptions (receiver_id);

-- One notification to one subscriber. webhook_id and payload are fixed when it is recorded, so
-- every attempt (a retry, a restart, a re-send by hand) carries the same id and bytes.
CREATE TABLE deliveries (
  id               INTEGER PRIMARY KEY,
  subscription_id  INTEGER NOT NULL,
  receiver_id      INTEGER NOT NULL,
  execution_id     INTEGER NOT NULL,
  event            TEXT NOT NULL,
  webhook_id       TEXT NOT NULL,
  payload          TEXT NOT NULL,
  state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  budget_from      INTEGER NOT NULL DEFAULT 0,  -- attempts before the last re-send by hand
  next_attempt_at  INTEGER,                     -- pending: due then (a claim pushes it past the send)
  last_status      INTEGER,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  finished_at      INTEGER
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_pending ON deliveries (subscription_id) WHERE state = 'pending';
CREATE INDEX deliveries_by_receiver ON deliveries (receiver_id, id);
CREATE INDEX deliveries_by_execution ON deliveries (execution_id);

-- Every attempt: what the operator sees in the API and the UI.
CREATE TABLE delivery_attempts (
  id           INTEGER PRIMARY KEY,
  delivery_id  INTEGER NOT NULL,
  attempt      INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  latency_ms   INTEGER NOT NULL,
  status       INTEGER,          -- the HTTP status; NULL when no answer came
  error        TEXT,
  answer       TEXT              -- the answer's first bytes (bounded)
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
