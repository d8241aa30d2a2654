-- PostgreSQL's dialect of migrations/011_receivers_by_id.sql, which adds a narrow index of
-- receiver ids for SQLite (whose table b-tree holds every config in its leaves). PostgreSQL's
-- primary key is already a separate, narrow index that OFFSET and count(*) can walk (an
-- index-only scan), so there is nothing to add: the version is recorded so that both dialects
-- answer the same applied_migrations().
SELECT 1;
