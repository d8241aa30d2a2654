-- Scale-out (docs/scale-out.md): several tripline replicas on this database.

-- Each unfinished execution belongs to one replica (the one that accepted it, or took it over);
-- '' for rows from before this migration, claimed by the first replica that starts.
ALTER TABLE executions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX executions_owner_unfinished ON executions (owner, id)
  WHERE status IN ('queued', 'running');

-- Each replica's lease (ms since the epoch); a replica whose lease ran out is taken over.
CREATE TABLE replicas (
  id          TEXT PRIMARY KEY,
  lease_until BIGINT NOT NULL,
  started_at  BIGINT NOT NULL
);

-- The lock of a lane (driver:target): one replica acts on a target at a time. A lock is free
-- only when no row names it; a dead replica's rows are taken over with its executions.
CREATE TABLE target_locks (
  lane     TEXT PRIMARY KEY,
  replica  TEXT NOT NULL,
  token    BIGINT NOT NULL,
  taken_at BIGINT NOT NULL
);
CREATE INDEX target_locks_by_replica ON target_locks (replica);
CREATE SEQUENCE target_lock_tokens;

-- The trigger tokens' signing keys, each sealed with the secrets key (secrets.h).
CREATE TABLE signing_keys (
  kid        TEXT PRIMARY KEY,
  secret     TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

-- What every replica keeps in memory, announced on commit to those listening (Store::watch).
CREATE FUNCTION tripline_receiver_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tripline_changes',
                    'receiver:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
  RETURN NULL;
END $$;
CREATE TRIGGER receivers_changed AFTER INSERT OR UPDATE OR DELETE ON receivers
  FOR EACH ROW EXECUTE FUNCTION tripline_receiver_changed();

CREATE FUNCTION tripline_admin_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tripline_changes', 'admin_tokens');
  RETURN NULL;
END $$;
CREATE TRIGGER admin_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON admin_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION tripline_admin_tokens_changed();

CREATE FUNCTION tripline_setting_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tripline_changes',
                    'setting:' || CASE WHEN TG_OP = 'DELETE' THEN OLD.name ELSE NEW.name END);
  RETURN NULL;
END $$;
CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE ON settings
  FOR EACH ROW EXECUTE FUNCTION tripline_setting_changed();
