-- Status webhooks: where a message's events go, when not to WEBHOOK_URL.
ALTER TABLE messages
    ADD COLUMN callback_url text
        CONSTRAINT messages_callback_url_http CHECK (callback_url ~* '^https?://[^/?#\s]+' AND char_length(callback_url) <= 2048);

-- The outbox: one row per event, written in the same statement as the state
-- change it reports, so that no event is lost to a crash. Delivered at
-- least once, in id order per message, claimed under a lease like messages
-- (so two instances never post one event at the same time).
CREATE TABLE webhook_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The event's webhook-id: the same on every attempt, unique everywhere.
    public_id    uuid NOT NULL DEFAULT gen_random_uuid(),
    -- No foreign key: messages stays truncatable on its own; the event of a
    -- message deleted before it was posted ends dead.
    message_id   bigint NOT NULL,
    type         text NOT NULL
        CONSTRAINT webhook_events_type_known CHECK (type IN ('message.sent', 'message.failed', 'message.delivered', 'message.undelivered')),
    url          text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
        CONSTRAINT webhook_events_status_known CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
    -- Still to be posted (pending or sending): what the claim and its index
    -- test. A boolean rather than the list of statuses, because of what the
    -- planner guesses before it has statistics (a fresh outbox filling
    -- faster than autovacuum analyzes it): half the rows for a boolean, near
    -- the truth of a queue, but one in a hundred for a list of text values,
    -- which made it sort every unfinished event at each claim.
    unfinished   boolean NOT NULL GENERATED ALWAYS AS (status IN ('pending', 'sending')) STORED,
    attempts     integer NOT NULL DEFAULT 0,
    -- pending: when the next attempt may start; sending: when the lease ends.
    due_at       timestamptz NOT NULL DEFAULT now(),
    claim_token  bigint NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at timestamptz
);

-- The claim walks the unfinished events in id order.
CREATE INDEX webhook_events_unfinished ON webhook_events (id) WHERE unfinished;
-- A message's events, for the order per message and for GET /api/messages/{id}.
CREATE INDEX webhook_events_by_message ON webhook_events (message_id, id);
-- The dead list.
CREATE INDEX webhook_events_dead ON webhook_events (id) WHERE status = 'dead';
