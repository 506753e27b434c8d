-- What became of a sent message, as the provider's delivery receipts tell.
-- status stays 'sent' whatever a receipt says.
ALTER TABLE messages
    ADD COLUMN delivery_status text
        CONSTRAINT messages_delivery_status_known CHECK (delivery_status IN ('delivered', 'undelivered')),
    -- The `at` of the receipt that set delivery_status: a receipt with an
    -- earlier `at` never overwrites it.
    ADD COLUMN delivered_at timestamptz,
    -- The receipt's status word and error, when not delivered.
    ADD COLUMN delivery_error text,
    ADD CONSTRAINT messages_delivery_after_sent
        CHECK (delivery_status IS NULL OR status = 'sent');

-- Receipts are matched on the provider's id.
CREATE INDEX messages_by_provider_message_id ON messages (provider_message_id)
    WHERE provider_message_id IS NOT NULL;

-- Receipts whose messageId no message holds (yet): a receipt can arrive
-- before the send's outcome is written. Applied when a message gets the id;
-- deleted a day after they arrived otherwise. One row per id: the receipt
-- with the latest `at`.
CREATE TABLE unmatched_receipts (
    provider_message_id text PRIMARY KEY,
    status              text NOT NULL
        CONSTRAINT unmatched_receipts_status_known CHECK (status IN ('delivered', 'undelivered', 'expired', 'rejected')),
    error               text,
    at                  timestamptz NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX unmatched_receipts_by_received_at ON unmatched_receipts (received_at);

-- Counts of delivered and undelivered messages, kept like the counts by
-- status (20261129000003), in the same table under the keys
-- 'delivery:delivered' and 'delivery:undelivered'.
CREATE OR REPLACE FUNCTION message_count_deltas_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO message_count_deltas (status, n) SELECT status, count(*) FROM new_rows GROUP BY status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO message_count_deltas (status, n)
        SELECT key, -count(*) FROM (
            SELECT status AS key FROM old_rows
            UNION ALL
            SELECT 'delivery:' || delivery_status FROM old_rows WHERE delivery_status IS NOT NULL
        ) changes
        GROUP BY key;
    ELSE
        INSERT INTO message_count_deltas (status, n)
        SELECT key, sum(n) FROM (
            SELECT status AS key, 1 AS n FROM new_rows
            UNION ALL
            SELECT status, -1 FROM old_rows
            UNION ALL
            SELECT 'delivery:' || delivery_status, 1 FROM new_rows WHERE delivery_status IS NOT NULL
            UNION ALL
            SELECT 'delivery:' || delivery_status, -1 FROM old_rows WHERE delivery_status IS NOT NULL
        ) changes
        GROUP BY key
        HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$;
