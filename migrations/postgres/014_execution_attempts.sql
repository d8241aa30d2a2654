-- PostgreSQL's dialect of migrations/014_execution_attempts.sql: each failed attempt's error, a
-- JSON array (text) of at most 16 {"attempt", "at", "error"} entries.
ALTER TABLE executions ADD COLUMN attempt_errors TEXT;
