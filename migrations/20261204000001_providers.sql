-- Several providers (SPEC Part 2, "Several providers").

-- The provider a message is bound to: the one that accepted it, or, while
-- it waits for a retry, the one whose answer left acceptance uncertain (it
-- is asked again with the same Idempotency-Key, and no other provider is).
-- Null: no provider may have it yet.
ALTER TABLE messages ADD COLUMN provider text;

-- The calls each provider received in each second of PostgreSQL's clock,
-- from every instance: a call is made only once its second has room under
-- the provider's max_per_second. Rows older than a minute are deleted.
CREATE TABLE provider_seconds (
    provider text NOT NULL,
    second   bigint NOT NULL,
    calls    integer NOT NULL,
    PRIMARY KEY (provider, second)
);

-- One row per provider call: which provider, when, how long, what it
-- answered. Written by the statement that writes the call's outcome.
-- message_id has no foreign key: the history of a call is kept even if it
-- lands after its row was taken over, and costs no lookup per call.
CREATE TABLE message_attempts (
    id          bigserial PRIMARY KEY,
    message_id  bigint NOT NULL,
    provider    text NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    -- Null when no answer came (time-out, no connection).
    http_status integer,
    -- Null when accepted.
    error       text,
    -- accepted, not_accepted (certainly not taken), uncertain, rejected.
    result      text NOT NULL
);
CREATE INDEX message_attempts_by_message ON message_attempts (message_id, id);
