-- A deleted receiver's name, so its executions (kept in the history after the delete) still say
-- which receiver ran them: the API's executions carry "receiver_name" (docs/api.md
-- "Executions"). Written in the delete's transaction; a row goes when its receiver's last
-- execution is pruned, so the table holds no more rows than receivers with history. Receiver ids
-- are never reused (AUTOINCREMENT since 003), so an id names one receiver for good.
CREATE TABLE deleted_receivers (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  deleted_at  INTEGER NOT NULL
);
