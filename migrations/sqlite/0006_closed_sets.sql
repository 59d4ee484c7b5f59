-- The closed sets of text values the store writes are checked by the database too (issue
-- 11): an event's status, a job's state, the target kind in a job's key and in a link.
-- The Rust side names them in one place each (`EventStatus`, `JobState`, `TargetKind`).
--
-- SQLite cannot add a CHECK to an existing column, so `events`, `jobs` and `links` are
-- rebuilt the documented way (create the new table, copy, drop, rename, recreate the
-- indexes), inside the migration's transaction. Foreign keys stay on: `jobs` is copied
-- aside and dropped first, so nothing refers to `events` while it is rebuilt, and the
-- jobs are inserted back (and checked) against the new `events`. The AUTOINCREMENT
-- counters are carried over, so an id is never handed out twice (event ids are also the
-- arrival sequence that breaks version ties).

CREATE TABLE counters_0006 AS SELECT name, seq FROM sqlite_sequence WHERE name IN ('events', 'jobs');

CREATE TABLE jobs_0006 AS SELECT * FROM jobs;
DROP TABLE jobs;

CREATE TABLE events_0006 (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    source            TEXT    NOT NULL,
    provider_event_id TEXT    NOT NULL,
    event_type        TEXT    NOT NULL,
    occurred_at_ms    INTEGER,
    received_at_ms    INTEGER NOT NULL,
    payload           TEXT    NOT NULL,
    verification      TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('accepted', 'ignored', 'rejected')),
    reason            TEXT,
    duplicates        INTEGER NOT NULL DEFAULT 0,
    delivery_id       INTEGER REFERENCES deliveries (id),
    UNIQUE (source, provider_event_id)
);
INSERT INTO events_0006 (id, source, provider_event_id, event_type, occurred_at_ms,
                         received_at_ms, payload, verification, status, reason, duplicates,
                         delivery_id)
SELECT id, source, provider_event_id, event_type, occurred_at_ms, received_at_ms, payload,
       verification, status, reason, duplicates, delivery_id
FROM events;
DROP TABLE events;
ALTER TABLE events_0006 RENAME TO events;
CREATE INDEX events_by_received ON events (received_at_ms);
CREATE INDEX events_by_delivery ON events (delivery_id);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    target_key       TEXT    NOT NULL
                     CHECK (target_key LIKE 'org:%' OR target_key LIKE 'user:%'
                            OR target_key LIKE 'link:org:%' OR target_key LIKE 'link:user:%'),
    change           TEXT    NOT NULL,
    version_ms       INTEGER NOT NULL,
    version_seq      INTEGER NOT NULL,
    state            TEXT    NOT NULL
                     CHECK (state IN ('pending', 'running', 'done', 'skipped', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    throttles        INTEGER NOT NULL DEFAULT 0,
    run_at_ms        INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    last_error       TEXT,
    waits_for        TEXT,
    window_start_ms  INTEGER NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);
INSERT INTO jobs (id, event_id, target_key, change, version_ms, version_seq, state, attempts,
                  throttles, run_at_ms, lease_owner, lease_expires_ms, last_error, waits_for,
                  window_start_ms, created_at_ms, updated_at_ms)
SELECT id, event_id, target_key, change, version_ms, version_seq, state, attempts, throttles,
       run_at_ms, lease_owner, lease_expires_ms, last_error, waits_for, window_start_ms,
       created_at_ms, updated_at_ms
FROM jobs_0006;
DROP TABLE jobs_0006;
CREATE INDEX jobs_runnable ON jobs (state, run_at_ms, id);
CREATE INDEX jobs_by_lease ON jobs (lease_expires_ms) WHERE state = 'running';
CREATE INDEX jobs_by_target ON jobs (target_key, state);
CREATE INDEX jobs_by_event ON jobs (event_id);
CREATE INDEX jobs_by_waits_for ON jobs (waits_for) WHERE waits_for IS NOT NULL;

DELETE FROM sqlite_sequence WHERE name IN ('events', 'jobs');
INSERT INTO sqlite_sequence (name, seq)
SELECT name, MAX(seq) FROM (
    SELECT name, seq FROM counters_0006
    UNION ALL SELECT 'events', COALESCE(MAX(id), 0) FROM events
    UNION ALL SELECT 'jobs', COALESCE(MAX(id), 0) FROM jobs)
GROUP BY name;
DROP TABLE counters_0006;

CREATE TABLE links_0006 (
    kind        TEXT    NOT NULL CHECK (kind IN ('org', 'user')),
    link        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    version_ms  INTEGER NOT NULL,
    version_seq INTEGER NOT NULL,
    PRIMARY KEY (kind, link, key)
);
INSERT INTO links_0006 (kind, link, key, external_id, version_ms, version_seq)
SELECT kind, link, key, external_id, version_ms, version_seq FROM links;
DROP TABLE links;
ALTER TABLE links_0006 RENAME TO links;
