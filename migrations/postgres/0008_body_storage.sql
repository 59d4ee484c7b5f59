-- Raw bodies are stored LZ4-compressed whenever that makes them smaller (0007), so the
-- server's own TOAST compression (pglz) finds nothing left to gain, yet ran on every body
-- over 2 KB: 2 % of the machine's CPU during ingest (BENCHMARKS.md, session 5). EXTERNAL
-- keeps large bodies out of line as before, without trying to compress them. Rows already
-- stored are unchanged.
ALTER TABLE deliveries ALTER COLUMN body SET STORAGE EXTERNAL;
