-- The PostgreSQL twin of migrations/sqlite/0006_closed_sets.sql: the closed sets of text
-- values the store writes are checked by the database too (issue 11). PostgreSQL adds
-- the constraints in place (each validates the existing rows).
ALTER TABLE events ADD CONSTRAINT events_status_known
    CHECK (status IN ('accepted', 'ignored', 'rejected'));
ALTER TABLE jobs ADD CONSTRAINT jobs_state_known
    CHECK (state IN ('pending', 'running', 'done', 'skipped', 'dead'));
ALTER TABLE jobs ADD CONSTRAINT jobs_target_key_kind
    CHECK (target_key LIKE 'org:%' OR target_key LIKE 'user:%'
           OR target_key LIKE 'link:org:%' OR target_key LIKE 'link:user:%');
ALTER TABLE links ADD CONSTRAINT links_kind_known CHECK (kind IN ('org', 'user'));
