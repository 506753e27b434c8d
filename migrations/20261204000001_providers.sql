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
