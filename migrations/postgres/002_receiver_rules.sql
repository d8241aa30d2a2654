-- PostgreSQL's dialect of migrations/002_receiver_rules.sql: rules, inbound authentication and
-- limits of a receiver (JSON text; NULL: none).
ALTER TABLE receivers ADD COLUMN rules TEXT;
ALTER TABLE receivers ADD COLUMN auth TEXT;
ALTER TABLE receivers ADD COLUMN limits TEXT;
