-- A delivery's raw body may be stored LZ4-compressed (see src/store/body.rs); the rows
-- written before keep the bytes as received.
ALTER TABLE deliveries ADD COLUMN body_encoding TEXT NOT NULL DEFAULT 'identity'
    CHECK (body_encoding IN ('identity', 'lz4'));
