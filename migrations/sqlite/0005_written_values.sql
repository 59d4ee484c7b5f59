-- The value orgsync last wrote to each field, so `orgsync drift` can compare it with the
-- live object: `written` is 'set' (the value is in `written_value`, exactly as PATCHed) or
-- 'removed' (orgsync removed the key); NULL on rows recorded before this migration.
ALTER TABLE field_versions ADD COLUMN written TEXT CHECK (written IN ('set', 'removed'));
ALTER TABLE field_versions ADD COLUMN written_value TEXT;
