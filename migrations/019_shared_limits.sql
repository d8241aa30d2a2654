-- Limits held across replicas (migrations/postgres/019_shared_limits.sql, docs/scale-out.md) are
-- PostgreSQL's alone: one process's memory holds a SQLite file's. The version is kept so both
-- stores list the same migrations.
SELECT 1;
