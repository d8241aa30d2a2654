-- PostgreSQL's dialect of migrations/017_deleted_receiver_names.sql: a deleted receiver's name,
-- kept while its executions are.
CREATE TABLE deleted_receivers (
  id          BIGINT PRIMARY KEY,
  name        TEXT NOT NULL,
  deleted_at  BIGINT NOT NULL
);
