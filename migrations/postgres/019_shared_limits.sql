-- Cooldowns, rate limits and queue caps held across replicas (docs/scale-out.md). Each replica
-- checks its own share in memory first; the group commit's transaction then checks the
-- receiver's whole count here (tripline_admit) before it records the execution, so N replicas
-- together admit what one would.

-- One row per receiver: its token bucket, the latest run of each action, and its unfinished
-- executions. Locked FOR UPDATE by the transaction that admits triggers of the receiver; made
-- for a receiver the first time one is admitted (tripline_admit), or here for those that exist.
CREATE TABLE limit_state (
  receiver_id BIGINT PRIMARY KEY,
  tokens      DOUBLE PRECISION,              -- NULL: a full bucket
  refilled_at BIGINT NOT NULL DEFAULT 0,
  queued      BIGINT NOT NULL DEFAULT 0,     -- unfinished executions, as of the last fold
  last_runs   JSONB NOT NULL DEFAULT '{}'    -- action -> ms of its latest execution
);

-- Changes of the unfinished count: +n by the transaction that records n executions (the group
-- commit), -1 by triggers for each execution that stops being unfinished (finished, cancelled,
-- or deleted unfinished). Appended, never updated, so neither the group commit nor the
-- executor's writes wait for a lock on limit_state; the next admission of the receiver folds
-- them into limit_state.queued. A deleted receiver's go with it (delete_receiver), and those
-- that come after it with the pruner.
CREATE TABLE limit_deltas (
  receiver_id BIGINT NOT NULL,
  n           BIGINT NOT NULL
);
CREATE INDEX limit_deltas_by_receiver ON limit_deltas (receiver_id);

CREATE FUNCTION tripline_count_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO limit_deltas VALUES (OLD.receiver_id, -1);
  ELSIF NEW.status IN ('queued', 'running') THEN
    INSERT INTO limit_deltas VALUES (NEW.receiver_id, 1);
  ELSE
    INSERT INTO limit_deltas VALUES (NEW.receiver_id, -1);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER executions_count_update AFTER UPDATE OF status ON executions FOR EACH ROW
  WHEN ((OLD.status IN ('queued', 'running')) <> (NEW.status IN ('queued', 'running')))
  EXECUTE FUNCTION tripline_count_finished();
CREATE TRIGGER executions_count_delete AFTER DELETE ON executions FOR EACH ROW
  WHEN (OLD.status IN ('queued', 'running')) EXECUTE FUNCTION tripline_count_finished();

-- What is unfinished already.
INSERT INTO limit_state (receiver_id, queued)
  SELECT r.id, (SELECT count(*) FROM executions e WHERE e.receiver_id = r.id
                AND e.status IN ('queued', 'running'))
  FROM receivers r;

-- Checks a batch's executions of one receiver against its limits, in order, and claims a rate
-- token and the action's latest run for each that passes. The rules are
-- trigger/receiver_limits.h's: a cooldown per action, then the queue cap, then the token bucket.
-- One row per execution, in order: verdict 'ok', 'revoked' (the receiver no longer grants its
-- generation), 'cooling_down' (wait: ms left), 'queue_full' or 'rate_limited' (wait: seconds).
-- kinds: 'trigger' (every limit), 'retry' or 'redeliver' (the queue cap only). The queue counts
-- the executions committed so far and those of this batch passed before; the group commit adds
-- the +n of what it records (limit_deltas). Called in a short transaction of its own, before
-- the group commit's (PostgresStore::commit_group): the limit_state row it locks FOR UPDATE is
-- held for that short transaction only, not through the group commit's flush. A batch calls it
-- for its receivers in id order.
CREATE FUNCTION tripline_admit(r BIGINT, gens BIGINT[], acts TEXT[], kinds TEXT[],
                               nows BIGINT[], cooldown_ms BIGINT, rate DOUBLE PRECISION,
                               burst DOUBLE PRECISION, max_queued BIGINT)
RETURNS TABLE (verdict TEXT, wait BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
  s limit_state%ROWTYPE;
  granted BIGINT;
  live BOOLEAN;
  folded BIGINT;
  last BIGINT;
  t DOUBLE PRECISION;
  act TEXT;
  now_ms BIGINT;
  pending BIGINT := 0;
  -- The database's clock bounds the replicas': one ahead by more than a second is taken as a
  -- second ahead, so a replica whose clock jumped cannot hold every replica's bucket empty or
  -- cooldown shut for as long as its lead (one behind only refuses more, for itself).
  db_now BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT + 1000;
BEGIN
  SELECT generation, enabled INTO granted, live FROM receivers WHERE id = r FOR SHARE;
  SELECT * INTO s FROM limit_state WHERE receiver_id = r FOR UPDATE;
  IF NOT FOUND AND granted IS NOT NULL THEN
    -- The receiver's first admission (made after this migration, or copied by migrate-data):
    -- its unfinished executions counted, and the -1s already in that count dropped, in one
    -- statement (one snapshot), by one transaction at a time.
    PERFORM pg_advisory_xact_lock(hashtext('tripline_limit_state:' || r)::BIGINT);
    SELECT * INTO s FROM limit_state WHERE receiver_id = r FOR UPDATE;
    IF NOT FOUND THEN
      WITH gone AS (DELETE FROM limit_deltas WHERE receiver_id = r)
        INSERT INTO limit_state (receiver_id, queued)
          SELECT r, count(*) FROM executions WHERE receiver_id = r
            AND status IN ('queued', 'running');
      SELECT * INTO s FROM limit_state WHERE receiver_id = r FOR UPDATE;
    END IF;
  END IF;
  IF s.receiver_id IS NOT NULL THEN
    WITH d AS (DELETE FROM limit_deltas WHERE receiver_id = r RETURNING n)
      SELECT coalesce(sum(n), 0) INTO folded FROM d;
    s.queued := greatest(s.queued + folded, 0);
  END IF;
  FOR i IN 1 .. coalesce(array_length(gens, 1), 0) LOOP
    verdict := 'ok';
    wait := 0;
    act := acts[i];
    now_ms := least(nows[i], db_now);
    IF granted IS NULL OR NOT live OR granted <> gens[i] THEN
      verdict := 'revoked';
    ELSE
      last := (s.last_runs ->> act)::BIGINT;
      IF last IS NULL AND cooldown_ms > 0 THEN
        -- An action that has not run since this receiver's row was made: its latest execution,
        -- newest first by the receiver's index.
        SELECT created_at INTO last FROM executions WHERE receiver_id = r AND action = act
          ORDER BY id DESC LIMIT 1;
        -- Kept whatever the verdict, 0 for "never": looked up once, not by every refusal.
        last := coalesce(last, 0);
        s.last_runs := jsonb_set(s.last_runs, ARRAY[act], to_jsonb(last));
      END IF;
      IF kinds[i] = 'trigger' AND cooldown_ms > 0 AND last IS NOT NULL
         AND now_ms - last < cooldown_ms THEN
        verdict := 'cooling_down';
        wait := cooldown_ms - (now_ms - last);
      ELSIF max_queued > 0 AND s.queued + pending >= max_queued THEN
        verdict := 'queue_full';
        wait := 10;  -- as one replica answers (receiver_limits.cpp)
      ELSIF kinds[i] = 'trigger' AND rate > 0 THEN
        -- Clocks of replicas differ a little: time never runs backwards for the bucket.
        t := least(burst, coalesce(s.tokens, burst)
                          + greatest(0, now_ms - s.refilled_at) / 1000.0 * rate);
        s.refilled_at := greatest(s.refilled_at, now_ms);
        IF t >= 1 THEN
          s.tokens := t - 1;
        ELSE
          s.tokens := t;
          verdict := 'rate_limited';
          wait := least(greatest(ceil((1 - t) / rate), 1), 86400)::BIGINT;
        END IF;
      END IF;
      IF verdict = 'ok' THEN
        pending := pending + 1;
        s.last_runs := jsonb_set(s.last_runs, ARRAY[act],
                                 to_jsonb(greatest(coalesce(last, now_ms), now_ms)));
      END IF;
    END IF;
    RETURN NEXT;
  END LOOP;
  IF s.receiver_id IS NOT NULL THEN
    UPDATE limit_state SET tokens = s.tokens, refilled_at = s.refilled_at, queued = s.queued,
                           last_runs = s.last_runs
      WHERE receiver_id = r;
  END IF;
END $$;
