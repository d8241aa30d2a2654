-- Rules, inbound authentication and limits of a receiver (JSON; NULL: none). Secrets inside
-- `auth` are sealed or hashed before they are stored.
ALTER TABLE receivers ADD COLUMN rules TEXT;
ALTER TABLE receivers ADD COLUMN auth TEXT;
ALTER TABLE receivers ADD COLUMN limits TEXT;
