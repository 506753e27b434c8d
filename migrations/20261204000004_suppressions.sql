-- The suppression list (SPEC Part 2): numbers that must never receive
-- another message. A message to one ends failed, 'suppressed ...', without
-- a provider call: at the claim, and at once for the pending messages of a
-- number when it is added.
CREATE TABLE suppressions (
    phone_number text PRIMARY KEY
        CONSTRAINT suppressions_e164 CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    reason       text NOT NULL DEFAULT ''
        CONSTRAINT suppressions_reason_length CHECK (char_length(reason) <= 500),
    created_at   timestamptz NOT NULL DEFAULT now()
);
