//! The pipeline's claims: take due rows, keep their leases.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::{bounded, millis};
use crate::domain::Claim;

/// What a claim takes, and how.
#[derive(Debug, Clone)]
pub struct ClaimPolicy {
    /// `DISPATCH_BATCH_SIZE`: the most rows one tick claims.
    pub batch_size: u32,
    /// `LEASE_MS`: how long a claim lasts.
    pub lease: Duration,
    /// Written to `claimed_by`.
    pub instance_id: Arc<str>,
    /// Whose turn a claim needs.
    pub turn: Turn,
    /// `WEBHOOK_URL`: where the events of the messages a claim fails
    /// (suppressed numbers) go when they have no `callback_url`.
    pub webhook_url: Option<Arc<str>>,
}

/// Whether a claim may go ahead on its own, or needs the fleet's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Instance scope: every tick of this instance claims.
    EveryTick,
    /// Cluster scope: a claim goes ahead only with the fleet's turn, which
    /// comes once per interval, whichever instance takes it.
    Fleet { interval: Duration },
}

/// Claims up to `limit` due rows, highest priority first (a promoted row
/// counts as the top one), lowest id first within a priority: pending rows
/// whose backoff is over and whose `send_at` has come, and sending rows
/// whose lease expired (their instance died); never an expired one (the
/// expiry sweep fails those, [`super::expire_messages`]). A claimed message
/// to a suppressed number is failed by the same statement, never returned. One
/// statement marks them `sending` under a lease, counts the attempt and bumps
/// the claim token, so no other claim can take them until the lease ends.
///
/// With [`Turn::Fleet`], the same statement first takes the fleet's turn: it
/// claims only if sending runs and the fleet's next tick is due, and then
/// moves that tick one interval on. Concurrent instances queue on the one
/// `dispatch_state` row, so exactly one of them wins each turn.
#[tracing::instrument(skip_all, fields(limit, instance_id = &*policy.instance_id))]
pub async fn claim_due(
    pool: &PgPool,
    policy: &ClaimPolicy,
    limit: u32,
) -> Result<Vec<Claim>, sqlx::Error> {
    let fleet_interval = match policy.turn {
        Turn::EveryTick => None,
        Turn::Fleet { interval } => Some(millis(interval)),
    };
    let claim = sqlx::query_as::<_, Claim>(
        r#"
        WITH turn AS (
            UPDATE dispatch_state
            -- The clock, not the transaction's start: a claim that queued on
            -- this row behind another one must not date its turn back.
            SET next_tick_at = clock_timestamp() + $4 * interval '1 millisecond',
                last_tick_at = clock_timestamp(),
                last_tick_by = $3
            WHERE $4::bigint IS NOT NULL AND running AND next_tick_at <= clock_timestamp()
            RETURNING 1
        ), taken_over AS (
            -- Rows whose lease ended (their instance died) first, from the
            -- index of rows in flight, read only up to the first lease
            -- still running.
            SELECT id, phone_number FROM messages
            WHERE ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM turn))
              AND status = 'sending' AND due_at <= now()
              AND (expires_at IS NULL OR expires_at > now())
            ORDER BY due_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), pending AS (
            -- Then pending rows, by lane and id.
            SELECT id, phone_number FROM messages
            WHERE ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM turn))
              AND status = 'pending' AND due_at <= now()
              AND (send_at IS NULL OR send_at <= now())
              AND (expires_at IS NULL OR expires_at > now())
            ORDER BY CASE WHEN promoted THEN 9 ELSE priority END DESC, id
            LIMIT $1 - (SELECT count(*) FROM taken_over)
            FOR UPDATE SKIP LOCKED
        ), due AS (
            SELECT id, phone_number,
                   EXISTS (SELECT 1 FROM suppressions s WHERE s.phone_number = d.phone_number)
                       AS suppressed
            FROM (SELECT * FROM taken_over UNION ALL SELECT * FROM pending) d
        ), suppressed AS (
            UPDATE messages m
            SET status = 'failed',
                last_error = 'suppressed' || coalesce(': ' || nullif(s.reason, ''), ''),
                due_at = now(),
                claimed_by = $3
            FROM suppressions s
            WHERE m.id = ANY (ARRAY(SELECT id FROM due WHERE suppressed))
              AND s.phone_number = m.phone_number
            RETURNING m.id, m.callback_url
        ), suppressed_events AS (
            INSERT INTO webhook_events (message_id, type, url)
            SELECT id, 'message.failed', coalesce(callback_url, $5) FROM suppressed
            WHERE coalesce(callback_url, $5) IS NOT NULL
            ORDER BY id
        )
        -- The claimed rows are found by primary key (`= ANY`), not by a
        -- join with `due`: a join is planned for `LIMIT $1` rows, which a
        -- plan made for any limit guesses large, and then it read the whole
        -- table into a hash for every claim.
        UPDATE messages m
        SET status = 'sending',
            attempts = m.attempts + 1,
            due_at = now() + $2 * interval '1 millisecond',
            claim_token = m.claim_token + 1,
            claimed_by = $3
        WHERE m.id = ANY (ARRAY(SELECT id FROM due WHERE NOT suppressed))
        RETURNING m.id, m.phone_number, m.content, m.attempts, m.claim_token, m.provider
        "#,
    )
    .bind(i64::from(limit))
    .bind(millis(policy.lease))
    .bind(&*policy.instance_id)
    .bind(fleet_interval)
    .bind(policy.webhook_url.as_deref())
    .fetch_all(pool);
    let mut claimed = bounded(claim).await?;
    // RETURNING has no order.
    claimed.sort_unstable_by_key(|message| message.id);
    Ok(claimed)
}

/// Extends the lease of claims still in flight to `lease` from now, with one
/// statement. A claim is renewed only while its row is `sending` under the
/// same claim token; rows locked by another statement are skipped, never
/// waited for (an outcome being written, or a claim taking the row over), so
/// a renewal never deadlocks with either. Returns the ids that another claim
/// has taken over: their lease is lost.
#[tracing::instrument(skip_all, fields(claims = claims.len()))]
pub async fn renew_leases(
    pool: &PgPool,
    claims: &[(i64, i64)],
    lease: Duration,
) -> Result<Vec<i64>, sqlx::Error> {
    let (ids, tokens): (Vec<i64>, Vec<i64>) = claims.iter().copied().unzip();
    let renew = sqlx::query_scalar(
        r#"
        WITH held AS (
            SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS h(id, claim_token)
        ), live AS (
            SELECT m.id FROM messages m JOIN held USING (id)
            -- (SELECT 'sending'), = ANY: see the outcome statement and
            -- docs/database.md.
            WHERE m.claim_token = held.claim_token AND m.status = (SELECT 'sending')
            FOR UPDATE OF m SKIP LOCKED
        ), renewed AS (
            UPDATE messages m
            SET due_at = now() + $3 * interval '1 millisecond'
            WHERE m.id = ANY (ARRAY(SELECT id FROM live))
        )
        SELECT held.id FROM held JOIN messages m USING (id)
        WHERE m.claim_token <> held.claim_token
        "#,
    )
    .bind(ids)
    .bind(tokens)
    .bind(millis(lease))
    .fetch_all(pool);
    bounded(renew).await
}
