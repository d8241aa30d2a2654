-- Scale-out's tables (migrations/postgres/018_replicas.sql, docs/scale-out.md) are PostgreSQL's
-- alone: a SQLite file is one process's. The version is kept so both stores list the same
-- migrations.
SELECT 1;
