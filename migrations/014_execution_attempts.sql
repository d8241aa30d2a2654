-- Each failed attempt's error, kept with its execution (docs/api.md "Executions"): `error` holds
-- only the last one, so after a retry succeeds the earlier failures would be gone. A JSON array
-- of {"attempt": N, "at": ms, "error": "..."}, appended in the same UPDATE that requeues or
-- fails the execution (Store::requeue_all, Store::finish_all). Bounded: each error at most 1024
-- characters, and at most 16 entries, the first attempt's and the 15 latest (the retry policy
-- makes at most 8 attempts by default). Pruned with its row.
ALTER TABLE executions ADD COLUMN attempt_errors TEXT;
