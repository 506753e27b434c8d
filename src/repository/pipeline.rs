//! The pipeline's statements: claim due rows, write outcomes.

use std::time::Duration;

use sqlx::PgPool;

use super::{bounded, millis};
use crate::domain::{Outcome, OutcomeKind};

/// A row claimed for one delivery attempt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMessage {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Fences the outcome write: it only lands while no later claim exists.
    pub claim_token: i64,
}

/// Claims up to `limit` due rows, lowest id first: pending rows whose backoff
/// is over, and sending rows whose lease expired (their instance died). One
/// statement marks them `sending` under a lease, counts the attempt and bumps
/// the claim token, so no other claim can take them until the lease ends.
///
/// With `turn` (cluster scope: the interval), the same statement first takes
/// the fleet's turn: it claims only if sending runs and the fleet's next tick
/// is due, and then moves that tick one interval on. Concurrent instances
/// queue on the one `dispatch_state` row, so exactly one of them wins each
/// turn.
#[tracing::instrument(skip_all, fields(limit, instance_id))]
pub async fn claim_due(
    pool: &PgPool,
    limit: u32,
    lease: Duration,
    instance_id: &str,
    turn: Option<Duration>,
) -> Result<Vec<ClaimedMessage>, sqlx::Error> {
    let claim = sqlx::query_as::<_, ClaimedMessage>(
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
        ), due AS (
            SELECT id FROM messages
            WHERE ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM turn))
              AND status IN ('pending', 'sending') AND due_at <= now()
            ORDER BY id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE messages m
        SET status = 'sending',
            attempts = m.attempts + 1,
            due_at = now() + $2 * interval '1 millisecond',
            claim_token = m.claim_token + 1,
            claimed_by = $3
        FROM due
        WHERE m.id = due.id
        RETURNING m.id, m.phone_number, m.content, m.attempts, m.claim_token
        "#,
    )
    .bind(i64::from(limit))
    .bind(millis(lease))
    .bind(instance_id)
    .bind(turn.map(millis))
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
            WHERE m.claim_token = held.claim_token AND m.status = 'sending'
            FOR UPDATE OF m SKIP LOCKED
        ), renewed AS (
            UPDATE messages m
            SET due_at = now() + $3 * interval '1 millisecond'
            FROM live
            WHERE m.id = live.id
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

/// Writes outcomes with one statement. Each lands only if its row is still
/// `sending` under the same claim token; returns the `(id, claim_token)` of
/// those that landed, the others having been fenced out by a later claim.
#[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
pub async fn record_outcomes(
    pool: &PgPool,
    outcomes: &[Outcome],
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let len = outcomes.len();
    let (mut ids, mut tokens, mut statuses) = (
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
    );
    let (mut provider_ids, mut sent_ats) = (Vec::with_capacity(len), Vec::with_capacity(len));
    let (mut errors, mut retry_ms) = (Vec::with_capacity(len), Vec::with_capacity(len));
    for outcome in outcomes {
        ids.push(outcome.id);
        tokens.push(outcome.claim_token);
        let (status, provider_id, sent_at, error, retry) = match &outcome.kind {
            OutcomeKind::Sent {
                provider_message_id,
                sent_at,
            } => (
                "sent",
                Some(provider_message_id.as_str()),
                Some(*sent_at),
                None,
                None,
            ),
            OutcomeKind::Retry { after, error } => {
                let millis = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
                ("pending", None, None, Some(error.as_str()), Some(millis))
            }
            OutcomeKind::Failed { error } => ("failed", None, None, Some(error.as_str()), None),
            OutcomeKind::Deferred { after } => {
                let millis = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
                ("deferred", None, None, None, Some(millis))
            }
        };
        statuses.push(status);
        provider_ids.push(provider_id);
        sent_ats.push(sent_at);
        errors.push(error);
        retry_ms.push(retry);
    }
    let write = sqlx::query_as(
        r#"
        UPDATE messages m
        SET status = CASE o.status WHEN 'deferred' THEN 'pending' ELSE o.status END,
            -- A deferred claim made no call: it does not count as an attempt.
            attempts = m.attempts - (o.status = 'deferred')::int,
            provider_message_id = o.provider_message_id,
            sent_at = o.sent_at,
            last_error = CASE o.status WHEN 'deferred' THEN m.last_error ELSE o.last_error END,
            due_at = CASE WHEN o.retry_ms IS NULL THEN m.due_at
                          ELSE now() + o.retry_ms * interval '1 millisecond' END
        FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bigint[])
            AS o(id, claim_token, status, provider_message_id, sent_at, last_error, retry_ms)
        WHERE m.id = o.id AND m.claim_token = o.claim_token AND m.status = 'sending'
        RETURNING m.id, m.claim_token
        "#,
    )
    .bind(ids)
    .bind(tokens)
    .bind(statuses)
    .bind(provider_ids)
    .bind(sent_ats)
    .bind(errors)
    .bind(retry_ms)
    .fetch_all(pool);
    bounded(write).await
}
