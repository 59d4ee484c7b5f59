-- The PostgreSQL twin of migrations/sqlite/0001_init.sql: same tables, columns and indexes
-- (INTEGER -> BIGINT, BLOB -> BYTEA, AUTOINCREMENT -> identity).

-- The bytes of each verified delivery that carried at least one new event, as received
-- (a Salesforce SessionId is redacted).
CREATE TABLE deliveries (
    id             BIGINT  PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    source         TEXT    NOT NULL,
    received_at_ms BIGINT  NOT NULL,
    content_type   TEXT,
    body           BYTEA   NOT NULL
);

-- Every event that passed verification, once per (source, provider event id).
CREATE TABLE events (
    id                BIGINT  PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    source            TEXT    NOT NULL,
    provider_event_id TEXT    NOT NULL,
    event_type        TEXT    NOT NULL,
    occurred_at_ms    BIGINT,
    received_at_ms    BIGINT  NOT NULL,
    payload           TEXT    NOT NULL,
    verification      TEXT    NOT NULL,
    -- accepted | ignored | rejected
    status            TEXT    NOT NULL,
    reason            TEXT,
    duplicates        BIGINT  NOT NULL DEFAULT 0,
    delivery_id       BIGINT  REFERENCES deliveries (id),
    UNIQUE (source, provider_event_id)
);

CREATE INDEX events_by_received ON events (received_at_ms);
CREATE INDEX events_by_delivery ON events (delivery_id);

-- One change for one target, applied by the workers.
CREATE TABLE jobs (
    id               BIGINT  PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    event_id         BIGINT  NOT NULL REFERENCES events (id),
    -- org:<external id> | user:<external id> | link:<kind>:<link>:<key>
    target_key       TEXT    NOT NULL,
    change           TEXT    NOT NULL,
    version_ms       BIGINT  NOT NULL,
    version_seq      BIGINT  NOT NULL,
    -- pending | running | done | skipped | dead
    state            TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    -- rate-limited retries: they lengthen the backoff without using up the attempts
    throttles        BIGINT  NOT NULL DEFAULT 0,
    run_at_ms        BIGINT  NOT NULL,
    lease_owner      TEXT,
    lease_expires_ms BIGINT,
    last_error       TEXT,
    -- a link the job's create step waits for (a user's organization), woken when learned
    waits_for        TEXT,
    -- when the current retry window began (creation, or a manual retry of a dead job)
    window_start_ms  BIGINT  NOT NULL,
    created_at_ms    BIGINT  NOT NULL,
    updated_at_ms    BIGINT  NOT NULL
);
CREATE INDEX jobs_by_state_run_at ON jobs (state, run_at_ms);
CREATE INDEX jobs_by_target ON jobs (target_key, state);
CREATE INDEX jobs_by_event ON jobs (event_id);
CREATE INDEX jobs_by_waits_for ON jobs (waits_for) WHERE waits_for IS NOT NULL;

-- The version of the newest value orgsync applied to each metadata field of each target.
CREATE TABLE field_versions (
    target_key  TEXT    NOT NULL,
    field       TEXT    NOT NULL,
    version_ms  BIGINT  NOT NULL,
    version_seq BIGINT  NOT NULL,
    PRIMARY KEY (target_key, field)
);

-- Learned aliases: (target kind, link kind, key) -> external id.
CREATE TABLE links (
    kind        TEXT    NOT NULL,
    link        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    version_ms  BIGINT  NOT NULL,
    version_seq BIGINT  NOT NULL,
    PRIMARY KEY (kind, link, key)
);
