-- A raw body over 2 KB was moved out of line into the TOAST table: a second heap row and
-- a TOAST index entry per chunk, 8 % of the server's CPU during ingest (BENCHMARKS.md,
-- session 8). Most webhook bodies, stored LZ4-compressed (0007), are 1.5-4 KB. With this
-- target a row is kept whole in its page up to 8 160 bytes; larger bodies still go out of
-- line (EXTERNAL, 0008). Rows already stored are unchanged.
ALTER TABLE deliveries SET (toast_tuple_target = 8160);
