-- Counts by status without counting the table: every statement that changes
-- messages appends its net change per status here (a statement-level
-- trigger over its transition tables: one row per status it changed, never
-- an update of a shared row, so concurrent writers never wait on each
-- other). The counts are the sums; the service folds the rows together
-- every few seconds.
-- No write to messages may fall between the first counts and the triggers
-- (instances of the previous version may be running).
LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE message_count_deltas (
    status text NOT NULL,
    n      bigint NOT NULL
);

INSERT INTO message_count_deltas (status, n) SELECT status, count(*) FROM messages GROUP BY status;

CREATE FUNCTION message_count_deltas_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO message_count_deltas (status, n) SELECT status, count(*) FROM new_rows GROUP BY status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO message_count_deltas (status, n) SELECT status, -count(*) FROM old_rows GROUP BY status;
    ELSE
        INSERT INTO message_count_deltas (status, n)
        SELECT status, sum(n) FROM (
            SELECT status, count(*) AS n FROM new_rows GROUP BY status
            UNION ALL
            SELECT status, -count(*) FROM old_rows GROUP BY status
        ) changes
        GROUP BY status
        HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER message_counts_on_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION message_count_deltas_record();
CREATE TRIGGER message_counts_on_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION message_count_deltas_record();
CREATE TRIGGER message_counts_on_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION message_count_deltas_record();

-- TRUNCATE, not DELETE: it waits for a fold in progress to commit, and then
-- takes the fold's new rows too.
CREATE FUNCTION message_count_deltas_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE message_count_deltas;
    RETURN NULL;
END
$$;

CREATE TRIGGER message_counts_on_truncate AFTER TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION message_count_deltas_reset();
