-- Idempotent enqueue (SPEC Part 2): the client's Idempotency-Key, unique,
-- so that two instances cannot both store one; and a SHA-256 digest of the
-- request it came with, to tell a repeat (200, the stored row) from another
-- request under the same key (409).
ALTER TABLE messages
    ADD COLUMN idempotency_key text,
    ADD COLUMN request_digest bytea,
    ADD CONSTRAINT messages_idempotency_key_length
        CHECK (idempotency_key IS NULL OR char_length(idempotency_key) BETWEEN 1 AND 255);
CREATE UNIQUE INDEX messages_by_idempotency_key ON messages (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
