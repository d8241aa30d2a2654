-- Accountability (docs/security.md "Roles" and "Audit log").
-- Every admin token has a role: admin (everything), operator (reads, plus the operational acts
-- of server/api/routes.cpp), read-only (GET only). Tokens made before roles existed keep what
-- they could do: they are admins.
ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
  CHECK (role IN ('admin', 'operator', 'read-only'));

-- The audit log: one row per management change, written in the same transaction as the change,
-- so no change is committed without its row and a failed one leaves none. The actor is named by
-- its token's id and name (never the token); before/after are JSON with every secret redacted.
-- Bounded by the pruner (docs/operations.md "Retention": --audit-retention).
CREATE TABLE audit_log (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  at           INTEGER NOT NULL,        -- milliseconds since the Unix epoch
  actor_id     INTEGER,                 -- the admin token's id; NULL: the service itself
  actor_name   TEXT NOT NULL,
  actor_role   TEXT NOT NULL,
  source       TEXT NOT NULL,           -- the client's address ('' for the service itself)
  action       TEXT NOT NULL,           -- receiver.create, token.revoke, workers.pause, ...
  target_type  TEXT NOT NULL,           -- receiver, subscription, token, workers, execution
  target_id    INTEGER,
  target_name  TEXT NOT NULL DEFAULT '',
  before       TEXT,                    -- JSON, secrets redacted; NULL: nothing before
  after        TEXT                     -- JSON, secrets redacted; NULL: nothing after
);
CREATE INDEX audit_by_target ON audit_log (target_type, target_id, id);
