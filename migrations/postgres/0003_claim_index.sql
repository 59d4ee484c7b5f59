-- Claiming in O(log n) of the backlog (issue 8): due pending jobs in (run_at_ms, id)
-- order, and expired leases in an index that holds only running jobs.
DROP INDEX jobs_by_state_run_at;
CREATE INDEX jobs_runnable ON jobs (state, run_at_ms, id);
CREATE INDEX jobs_by_lease ON jobs (lease_expires_ms) WHERE state = 'running';

-- From this version an event's `payload` may be the empty string: the payload is then
-- its delivery's raw body parsed as JSON (JSON sources, where they are the same bytes),
-- so the body is stored once. Rows written before keep their payload text.
