-- PostgreSQL's dialect of migrations/003_trust.sql. Receiver ids are never reused: the identity
-- sequence of 001 already never hands one out twice, so nothing is rebuilt here. Each receiver
-- carries a random nonce signed into its tokens, and a version bumped by every committed change.
ALTER TABLE receivers ADD COLUMN nonce TEXT NOT NULL DEFAULT '';
ALTER TABLE receivers ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- The action each execution runs ("up", "delete", ...).
ALTER TABLE executions ADD COLUMN action TEXT;

-- Switches that must survive a restart (the workers' pause).
CREATE TABLE settings (
  name   TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);
