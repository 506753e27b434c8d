-- Outcomes per minute, for the console's chart: every outcome batch adds
-- its counts to the row of its minute (all instances together).
CREATE TABLE dispatch_activity (
    minute  timestamptz PRIMARY KEY,
    sent    bigint NOT NULL DEFAULT 0,
    retried bigint NOT NULL DEFAULT 0,
    failed  bigint NOT NULL DEFAULT 0
);
