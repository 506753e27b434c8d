//! The outcome of each claim: the row's next state, its webhook events, and
//! the receipt that came before it.

use sqlx::PgPool;

use super::{bounded, millis};
use crate::domain::{Attempt, MessageStatus, Outcome, OutcomeKind};

/// One outcome as the columns of the outcome statement.
struct OutcomeRow<'a> {
    status: MessageStatus,
    provider_message_id: Option<&'a str>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<&'a str>,
    retry_ms: Option<i64>,
    /// False when no provider call was made (deferred): the attempt is given
    /// back and the previous error kept.
    called: bool,
}

impl<'a> From<&'a OutcomeKind> for OutcomeRow<'a> {
    fn from(kind: &'a OutcomeKind) -> Self {
        let row = |status, last_error| OutcomeRow {
            status,
            provider_message_id: None,
            sent_at: None,
            last_error,
            retry_ms: None,
            called: true,
        };
        match kind {
            OutcomeKind::Sent {
                provider_message_id,
                sent_at,
            } => OutcomeRow {
                provider_message_id: Some(provider_message_id),
                sent_at: Some(*sent_at),
                ..row(MessageStatus::Sent, None)
            },
            OutcomeKind::Retry { after, error } => OutcomeRow {
                retry_ms: Some(millis(*after)),
                ..row(MessageStatus::Pending, Some(error))
            },
            OutcomeKind::Failed { error } => row(MessageStatus::Failed, Some(error)),
            OutcomeKind::Deferred { after } => OutcomeRow {
                retry_ms: Some(millis(*after)),
                called: false,
                ..row(MessageStatus::Pending, None)
            },
        }
    }
}

/// The outcome statement of [`record_outcomes`].
const OUTCOME_STATEMENT: &str = r#"
        WITH written AS (
            UPDATE messages m
            SET status = o.status,
                -- A claim that made no call does not count as an attempt.
                attempts = m.attempts - (NOT o.called)::int,
                provider_message_id = o.provider_message_id,
                sent_at = o.sent_at,
                provider = coalesce(o.provider, m.provider),
                segments = CASE WHEN o.status = 'sent' THEN o.segments ELSE m.segments END,
                last_error = CASE WHEN o.called THEN o.last_error ELSE m.last_error END,
                -- pending: when it may be tried again; failed: when it failed.
                due_at = CASE WHEN o.status = 'failed' THEN now()
                              WHEN o.retry_ms IS NULL THEN m.due_at
                              ELSE now() + o.retry_ms * interval '1 millisecond' END,
                delivery_status = CASE WHEN r.status IS NULL THEN m.delivery_status
                                       WHEN r.status = 'delivered' THEN 'delivered'
                                       ELSE 'undelivered' END,
                delivered_at = coalesce(r.at, m.delivered_at),
                delivery_error = CASE WHEN r.status IS NULL THEN m.delivery_error
                                      WHEN r.status = 'delivered' THEN NULL
                                      ELSE r.status || coalesce(': ' || r.error, '') END
            FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[],
                        $6::text[], $7::bigint[], $8::boolean[], $10::text[], $18::smallint[])
                AS o(id, claim_token, status, provider_message_id, sent_at, last_error, retry_ms, called,
                     provider, segments)
                LEFT JOIN unmatched_receipts r ON r.provider_message_id = o.provider_message_id
            -- 'sending' as a value the planner does not see: the statistics
            -- of a queue hold almost no sending row, and from a constant the
            -- planner expected one, read the table, and compared every
            -- sending row with every outcome (a second for 1,000 outcomes).
            WHERE m.id = o.id AND m.claim_token = o.claim_token AND m.status = (SELECT 'sending')
            RETURNING m.id, m.claim_token, m.status, m.delivery_status, m.callback_url,
                      r.provider_message_id AS receipt_taken
        ), taken AS (
            DELETE FROM unmatched_receipts u USING written w
            WHERE u.provider_message_id = w.receipt_taken
        ), events AS (
            INSERT INTO webhook_events (message_id, type, url)
            SELECT id, type, url FROM (
                SELECT id, 'message.' || status AS type, coalesce(callback_url, $9) AS url, 0 AS nth
                FROM written WHERE status IN ('sent', 'failed')
                UNION ALL
                SELECT id, 'message.' || delivery_status, coalesce(callback_url, $9), 1
                FROM written WHERE receipt_taken IS NOT NULL
            ) e
            WHERE url IS NOT NULL
            ORDER BY id, nth
        ), calls AS (
            INSERT INTO message_attempts (message_id, provider, started_at, duration_ms, http_status, error, result)
            SELECT * FROM unnest($11::bigint[], $12::text[], $13::timestamptz[], $14::int[], $15::int[],
                                 $16::text[], $17::text[])
        )
        SELECT id, claim_token FROM written
        "#;

/// Writes outcomes with one statement. Each lands only if its row is still
/// `sending` under the same claim token; returns the `(id, claim_token)` of
/// those that landed, the others having been fenced out by a later claim.
/// A row that becomes `sent` takes the receipt kept for its id, if one came
/// first (see [`super::record_receipts`]). The same statement writes the
/// webhook events of the rows that reached `sent` or `failed` (and of the
/// receipt taken), to the row's `callback_url` or else to `webhook_url`,
/// and the history of the provider calls (`message_attempts`), those of
/// fenced-out outcomes too: the calls were made.
#[tracing::instrument(skip_all, fields(outcomes = outcomes.len()))]
pub async fn record_outcomes(
    pool: &PgPool,
    outcomes: &[Outcome],
    webhook_url: Option<&str>,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows: Vec<OutcomeRow> = outcomes.iter().map(|o| (&o.kind).into()).collect();
    let write = sqlx::query_as(OUTCOME_STATEMENT)
        .bind(outcomes.iter().map(|o| o.id).collect::<Vec<_>>())
        .bind(outcomes.iter().map(|o| o.claim_token).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| r.provider_message_id)
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.sent_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.last_error).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.retry_ms).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.called).collect::<Vec<_>>())
        .bind(webhook_url)
        .bind(
            outcomes
                .iter()
                .map(|o| o.provider.as_deref())
                .collect::<Vec<_>>(),
        );
    let calls: Vec<(i64, &Attempt)> = outcomes
        .iter()
        .flat_map(|o| o.attempts.iter().map(move |a| (o.id, a)))
        .collect();
    let write = write
        .bind(calls.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(
            calls
                .iter()
                .map(|(_, a)| a.provider.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(calls.iter().map(|(_, a)| a.started_at).collect::<Vec<_>>())
        .bind(
            calls
                .iter()
                .map(|(_, a)| i32::try_from(a.duration.as_millis()).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .bind(
            calls
                .iter()
                .map(|(_, a)| a.http_status.map(i32::from))
                .collect::<Vec<_>>(),
        )
        .bind(
            calls
                .iter()
                .map(|(_, a)| a.error.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            calls
                .iter()
                .map(|(_, a)| a.result.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            outcomes
                .iter()
                .map(|o| i16::try_from(o.segments).unwrap_or(i16::MAX))
                .collect::<Vec<_>>(),
        )
        .fetch_all(pool);
    bounded(write).await
}
