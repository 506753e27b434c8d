-- Retention (RETENTION_DAYS): finished messages are deleted oldest first,
-- sent ones by sent_at (on messages_sent_newest), failed ones by the time
-- they failed, which due_at holds from now on (it is set when a row fails).
-- This index holds failed rows only, so it costs nothing to the others.
CREATE INDEX messages_failed_by_due_at ON messages (due_at) WHERE status = 'failed';
