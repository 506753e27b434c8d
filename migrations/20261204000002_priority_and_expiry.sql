-- Priority, scheduled sends, expiry (SPEC Part 2).
ALTER TABLE messages
    -- Higher is sent first; within one priority, lower id first.
    ADD COLUMN priority smallint NOT NULL DEFAULT 0
        CONSTRAINT messages_priority_range CHECK (priority BETWEEN 0 AND 9),
    -- Not sent before this time.
    ADD COLUMN send_at timestamptz,
    -- Not sent after this time: failed with last_error 'expired ...'.
    ADD COLUMN expires_at timestamptz,
    -- Set once the message has waited PRIORITY_MAX_WAIT_MS while a higher
    -- priority was waiting too: from then on it is claimed as if it had the
    -- top priority.
    ADD COLUMN promoted boolean NOT NULL DEFAULT false;

-- The claim's order: the lane (the priority, or the top one once promoted)
-- from high to low, then id. With every row at priority 0 and none
-- promoted, it is the id order of Part 1.
CREATE INDEX messages_unfinished_by_lane
    ON messages ((CASE WHEN promoted THEN 9 ELSE priority END) DESC, id)
    WHERE status IN ('pending', 'sending');

-- The keeper's question "does a priority above 0 wait?": only such rows
-- are in it, so it costs nothing while every message is at priority 0.
CREATE INDEX messages_unfinished_prioritized ON messages (priority)
    WHERE status IN ('pending', 'sending') AND priority > 0;

-- The expiry sweep: unfinished messages with an expiry.
CREATE INDEX messages_unfinished_expiring ON messages (expires_at)
    WHERE status IN ('pending', 'sending') AND expires_at IS NOT NULL;

-- What status counts: messages scheduled for later, and messages that
-- expired (each index holds only those rows).
CREATE INDEX messages_scheduled ON messages (send_at)
    WHERE status = 'pending' AND send_at IS NOT NULL;
CREATE INDEX messages_expired ON messages (id)
    WHERE status = 'failed' AND last_error LIKE 'expired at %';
