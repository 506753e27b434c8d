-- The segments a sent message was billed (its text's, counted by the
-- service when it writes the outcome), summed with the counts by status
-- under the key 'segments:sent': status shows what the providers bill.
ALTER TABLE messages ADD COLUMN segments smallint;

CREATE OR REPLACE FUNCTION message_count_deltas_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO message_count_deltas (status, n)
        SELECT key, sum(n) FROM (
            SELECT status AS key, 1 AS n FROM new_rows
            UNION ALL
            SELECT 'segments:sent', segments FROM new_rows WHERE status = 'sent' AND segments IS NOT NULL
        ) changes
        GROUP BY key;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO message_count_deltas (status, n)
        SELECT key, sum(n) FROM (
            SELECT status AS key, -1 AS n FROM old_rows
            UNION ALL
            SELECT 'delivery:' || delivery_status, -1 FROM old_rows WHERE delivery_status IS NOT NULL
            UNION ALL
            SELECT 'segments:sent', -segments FROM old_rows WHERE status = 'sent' AND segments IS NOT NULL
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
            UNION ALL
            SELECT 'segments:sent', segments FROM new_rows WHERE status = 'sent' AND segments IS NOT NULL
            UNION ALL
            SELECT 'segments:sent', -segments FROM old_rows WHERE status = 'sent' AND segments IS NOT NULL
        ) changes
        GROUP BY key
        HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$;
