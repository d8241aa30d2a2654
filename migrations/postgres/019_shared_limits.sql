-- Cooldowns, rate limits and queue caps held across replicas (docs/scale-out.md). Each replica
-- checks its own share in memory first; the group commit's transaction then checks the
-- receiver's whole count here (tripline_admit) before it records the execution, so N replicas
-- together admit what one would.

-- One row per receiver a trigger reached: its token bucket, the latest run of each action, and
-- its unfinished executions. Locked FOR UPDATE by the transaction that admits a trigger.
CREATE TABLE limit_state (
  receiver_id BIGINT PRIMARY KEY,
  tokens      DOUBLE PRECISION,              -- NULL: a full bucket
  refilled_at BIGINT NOT NULL DEFAULT 0,
  queued      BIGINT NOT NULL DEFAULT 0,     -- unfinished executions, as of the last fold
  last_runs   JSONB NOT NULL DEFAULT '{}'    -- action -> ms of its latest execution
);

-- Unfinished executions counted by triggers: +1 for an execution recorded queued, -1 when it
-- finishes (or is deleted unfinished). Appended, never updated, so the executor's writes never
-- wait for an admission's lock on limit_state; the next admission of the receiver folds them
-- into limit_state.queued. A deleted receiver's go with it (delete_receiver).
CREATE TABLE limit_deltas (
  receiver_id BIGINT NOT NULL,
  n           BIGINT NOT NULL
);
CREATE INDEX limit_deltas_by_receiver ON limit_deltas (receiver_id);

CREATE FUNCTION tripline_count_unfinished() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER executions_count_insert AFTER INSERT ON executions FOR EACH ROW
  WHEN (NEW.status IN ('queued', 'running')) EXECUTE FUNCTION tripline_count_unfinished();
CREATE TRIGGER executions_count_update AFTER UPDATE OF status ON executions FOR EACH ROW
  WHEN ((OLD.status IN ('queued', 'running')) <> (NEW.status IN ('queued', 'running')))
  EXECUTE FUNCTION tripline_count_unfinished();
CREATE TRIGGER executions_count_delete AFTER DELETE ON executions FOR EACH ROW
  WHEN (OLD.status IN ('queued', 'running')) EXECUTE FUNCTION tripline_count_unfinished();

-- What is unfinished already.
INSERT INTO limit_deltas (receiver_id, n)
  SELECT receiver_id, count(*) FROM executions WHERE status IN ('queued', 'running')
  GROUP BY receiver_id;

-- Checks one execution against its receiver's limits and, when it passes, claims them (a rate
-- token, the action's latest run; its queue slot is the insert's +1). The rules are
-- trigger/receiver_limits.h's: a cooldown per action, then the queue cap, then the token bucket.
-- kind: 'trigger' (all of them), 'retry' or 'redeliver' (the queue cap only). Answers verdict
-- 'ok', 'revoked' (the receiver no longer grants the URL), 'cooling_down' (wait: ms left),
-- 'queue_full' or 'rate_limited' (wait: seconds). The caller holds the receiver's row FOR SHARE
-- and its limit_state row FOR UPDATE, both taken for the whole batch in id order (no deadlock
-- between batches), and records the execution in the same statement when the verdict is 'ok'.
CREATE FUNCTION tripline_admit(r BIGINT, gen BIGINT, act TEXT, kind TEXT, now_ms BIGINT,
                               cooldown_ms BIGINT, rate DOUBLE PRECISION,
                               burst DOUBLE PRECISION, max_queued BIGINT,
                               OUT verdict TEXT, OUT wait BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
  s limit_state%ROWTYPE;
  folded BIGINT;
  last BIGINT;
  t DOUBLE PRECISION;
BEGIN
  verdict := 'ok';
  wait := 0;
  PERFORM 1 FROM receivers WHERE id = r AND generation = gen AND enabled FOR SHARE;
  IF NOT FOUND THEN
    verdict := 'revoked';
    RETURN;
  END IF;
  SELECT * INTO s FROM limit_state WHERE receiver_id = r FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO limit_state (receiver_id) VALUES (r) ON CONFLICT DO NOTHING;
    SELECT * INTO s FROM limit_state WHERE receiver_id = r FOR UPDATE;
  END IF;
  WITH d AS (DELETE FROM limit_deltas WHERE receiver_id = r RETURNING n)
    SELECT coalesce(sum(n), 0) INTO folded FROM d;
  s.queued := greatest(s.queued + folded, 0);

  last := (s.last_runs ->> act)::BIGINT;
  IF last IS NULL AND cooldown_ms > 0 THEN
    -- A receiver admitted here for the first time (or whose action never ran since this
    -- migration): its latest execution of the action, newest first by the receiver's index.
    SELECT created_at INTO last FROM executions WHERE receiver_id = r AND action = act
      ORDER BY id DESC LIMIT 1;
  END IF;
  IF kind = 'trigger' AND cooldown_ms > 0 AND last IS NOT NULL
     AND now_ms - last < cooldown_ms THEN
    verdict := 'cooling_down';
    wait := cooldown_ms - (now_ms - last);
  ELSIF max_queued > 0 AND s.queued >= max_queued THEN
    verdict := 'queue_full';
    wait := 10;  -- as one replica answers (receiver_limits.cpp)
  ELSIF kind = 'trigger' AND rate > 0 THEN
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
    s.last_runs := jsonb_set(s.last_runs, ARRAY[act],
                             to_jsonb(greatest(coalesce(last, now_ms), now_ms)));
  END IF;
  UPDATE limit_state SET tokens = s.tokens, refilled_at = s.refilled_at, queued = s.queued,
                         last_runs = s.last_runs
    WHERE receiver_id = r;
END $$;
