-- PostgreSQL's dialect of migrations/010_admin_token_from_env.sql: the admin token given in
-- TRIPLINE_ADMIN_TOKEN is one managed row.
ALTER TABLE admin_tokens ADD COLUMN from_env BOOLEAN NOT NULL DEFAULT false;
