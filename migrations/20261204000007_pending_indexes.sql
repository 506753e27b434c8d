-- The claim's indexes hold pending rows only. A claim used to walk, in
-- messages_unfinished_by_lane, past every row in flight (sending, its lease
-- running) and past the entries their claims left behind, before it found
-- a due row: thousands of heap visits per claim with thousands of calls in
-- flight. Rows in flight now have an index of their own, by the end of
-- their lease, which a claim reads only up to the first lease still
-- running; and a claim no longer adds an entry to the lane and id indexes.
DROP INDEX messages_unfinished_by_lane;
CREATE INDEX messages_pending_by_lane
    ON messages ((CASE WHEN promoted THEN 9 ELSE priority END) DESC, id)
    WHERE status = 'pending';

DROP INDEX messages_unfinished_by_id;
CREATE INDEX messages_pending_by_id ON messages (id) WHERE status = 'pending';

DROP INDEX messages_unfinished_prioritized;
CREATE INDEX messages_pending_prioritized ON messages (priority)
    WHERE status = 'pending' AND priority > 0;

-- Rows in flight, by the end of their lease: a claim takes over those whose
-- lease ended (their instance died).
CREATE INDEX messages_sending_by_lease ON messages (due_at) WHERE status = 'sending';
