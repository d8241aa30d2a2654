-- The admin token given in TRIPLINE_ADMIN_TOKEN is one managed row (trust 10a): when the
-- variable's value changes, the start-up revokes the row of the old value and stores the new one.
ALTER TABLE admin_tokens ADD COLUMN from_env INTEGER NOT NULL DEFAULT 0;
-- Earlier versions added a row, always named so, for every value the variable ever had; they are
-- all managed now, so the next start keeps only the current value's.
UPDATE admin_tokens SET from_env = 1 WHERE name = 'from TRIPLINE_ADMIN_TOKEN';
