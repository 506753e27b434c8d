-- The fleet's shared state, for DISPATCH_SCOPE=cluster: whether sending runs,
-- and when the next tick may claim. One row, created at start-up from
-- DISPATCH_AUTOSTART the first time only; after that it is the fleet's.
CREATE TABLE dispatch_state (
    id           smallint PRIMARY KEY DEFAULT 1 CONSTRAINT dispatch_state_single_row CHECK (id = 1),
    running      boolean NOT NULL,
    -- The earliest time any instance may claim the next batch.
    next_tick_at timestamptz NOT NULL DEFAULT now(),
    last_tick_at timestamptz,
    last_tick_by text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every instance is told at once when sending starts or stops, whoever
-- changed it (the API or an operator's UPDATE).
CREATE FUNCTION dispatch_state_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dispatch_state', CASE WHEN NEW.running THEN 'running' ELSE 'stopped' END);
    RETURN NEW;
END
$$;

CREATE TRIGGER dispatch_state_changed
    AFTER UPDATE OF running ON dispatch_state
    FOR EACH ROW WHEN (OLD.running IS DISTINCT FROM NEW.running)
    EXECUTE FUNCTION dispatch_state_notify();

-- Instances that were alive lately: each writes its heartbeat here.
CREATE TABLE dispatch_instances (
    instance_id text PRIMARY KEY,
    scope       text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now()
);
