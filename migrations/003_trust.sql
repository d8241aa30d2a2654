-- Trust (docs/security.md): a revoked trigger URL never works again.
--
-- Receiver ids are never reused: AUTOINCREMENT, seeded past every id ever handed out, including
-- ids of deleted receivers that executions still name (SQLite without AUTOINCREMENT hands the
-- highest deleted rowid out again). Each new receiver also carries a random nonce that is signed
-- into its tokens, so even a database recreated from scratch next to the same signing keys cannot
-- issue an earlier receiver's URL. Rows created before this migration keep an empty nonce, and so
-- their current URLs.
--
-- `version` counts every committed change of a row: the in-memory receiver cache only ever moves
-- to a newer version, and an edit checked against its peer is saved only if nothing changed
-- the row meanwhile.
CREATE TABLE receivers_v3 (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  driver      TEXT NOT NULL,
  config      TEXT NOT NULL,
  enabled     INTEGER NOT NULL DEFAULT 1,
  generation  INTEGER NOT NULL DEFAULT 1,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  rules       TEXT,
  auth        TEXT,
  limits      TEXT,
  nonce       TEXT NOT NULL DEFAULT '',
  version     INTEGER NOT NULL DEFAULT 1
);
INSERT INTO receivers_v3 (id, name, driver, config, enabled, generation, created_at, updated_at,
                          rules, auth, limits, nonce, version)
  SELECT id, name, driver, config, enabled, generation, created_at, updated_at, rules, auth, limits,
         '', 1
  FROM receivers;
DROP TABLE receivers;
ALTER TABLE receivers_v3 RENAME TO receivers;
DELETE FROM sqlite_sequence WHERE name = 'receivers';
INSERT INTO sqlite_sequence (name, seq)
  VALUES ('receivers', max(coalesce((SELECT max(id) FROM receivers), 0),
                           coalesce((SELECT max(receiver_id) FROM executions), 0)));

-- The action each execution runs ("up", "delete", ...): cooldowns and rate limits are rebuilt
-- from committed executions after a restart, so they need no table of their own.
ALTER TABLE executions ADD COLUMN action TEXT;

-- Switches that must survive a restart (the workers' pause).
CREATE TABLE settings (
  name   TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);
