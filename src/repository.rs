//! Every SQL statement of the service, as plain async functions over a pool.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{Content, Outcome, OutcomeKind, PhoneNumber};

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

/// The longest the pipeline waits for one statement.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Gives up on a statement after [`STATEMENT_TIMEOUT`], so that a server that
/// froze or a network that went silent cannot hang the pipeline.
async fn bounded<T>(
    statement: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(STATEMENT_TIMEOUT, statement)
        .await
        .map_err(|_| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from PostgreSQL within {STATEMENT_TIMEOUT:?}"),
            ))
        })?
}

/// Later than any `sent_at`: the start of the sent list.
const LATEST: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(end_of_9999) => end_of_9999,
    None => DateTime::<Utc>::MAX_UTC,
};

/// One row of the sent list.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SentMessage {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    /// The provider's `messageId`.
    #[sqlx(rename = "provider_message_id")]
    pub message_id: String,
    pub sent_at: DateTime<Utc>,
}

/// One message with its delivery state.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StoredMessage {
    pub id: i64,
    pub phone_number: String,
    pub content: String,
    /// pending, sending, sent or failed.
    pub status: String,
    pub attempts: i32,
    pub provider_message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Rows by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
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

/// Adds outcome counts to the current minute's activity.
pub async fn record_activity(
    pool: &PgPool,
    sent: i64,
    retried: i64,
    failed: i64,
) -> Result<(), sqlx::Error> {
    let add = sqlx::query(
        r#"
        INSERT INTO dispatch_activity (minute, sent, retried, failed)
        VALUES (date_trunc('minute', now()), $1, $2, $3)
        ON CONFLICT (minute) DO UPDATE
        SET sent = dispatch_activity.sent + $1,
            retried = dispatch_activity.retried + $2,
            failed = dispatch_activity.failed + $3
        "#,
    )
    .bind(sent)
    .bind(retried)
    .bind(failed)
    .execute(pool);
    bounded(add).await.map(|_| ())
}

/// Outcomes in one minute.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MinuteActivity {
    pub minute: DateTime<Utc>,
    pub sent: i64,
    pub retried: i64,
    pub failed: i64,
}

/// Outcomes per minute over the last hour, oldest first; minutes without
/// any are left out.
pub async fn recent_activity(pool: &PgPool) -> Result<Vec<MinuteActivity>, sqlx::Error> {
    sqlx::query_as::<_, MinuteActivity>(
        r#"
        SELECT minute, sent, retried, failed FROM dispatch_activity
        WHERE minute > now() - interval '1 hour'
        ORDER BY minute
        "#,
    )
    .fetch_all(pool)
    .await
}

/// When the oldest unfinished message was created.
pub async fn oldest_pending(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT created_at FROM messages WHERE status IN ('pending', 'sending') ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

/// Puts a failed message back to pending, due now, with its attempts reset;
/// `None` when there is no failed message with this id.
pub async fn retry_failed(pool: &PgPool, id: i64) -> Result<Option<StoredMessage>, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        UPDATE messages SET status = 'pending', attempts = 0, due_at = now()
        WHERE id = $1 AND status = 'failed'
        RETURNING id, phone_number, content, status, attempts, provider_message_id,
                  sent_at, last_error, created_at
        "#,
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Rows by status, from the deltas the `messages` triggers keep: a sum over
/// a few rows, whatever the size of the table.
#[tracing::instrument(skip_all)]
pub async fn count_by_status(pool: &PgPool) -> Result<StatusCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, sum(n)::bigint FROM message_count_deltas GROUP BY status")
            .fetch_all(pool)
            .await?;
    let mut counts = StatusCounts::default();
    for (status, count) in rows {
        match status.as_str() {
            "pending" => counts.pending = count,
            "sending" => counts.sending = count,
            "sent" => counts.sent = count,
            "failed" => counts.failed = count,
            _ => {}
        }
    }
    Ok(counts)
}

/// One page of sent messages, newest first, after the `(sent_at, id)` key of
/// the previous page's last row.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn sent_page(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, i64)>,
    limit: u32,
) -> Result<Vec<SentMessage>, sqlx::Error> {
    // Without a cursor, start after a key later than any row: one statement
    // shape, so the plan is always the index scan.
    let (sent_at, id) = after.unwrap_or((LATEST, i64::MAX));
    sqlx::query_as::<_, SentMessage>(
        r#"
        SELECT id, phone_number, content, provider_message_id, sent_at
        FROM messages
        WHERE status = 'sent' AND (sent_at, id) < ($1, $2)
        ORDER BY sent_at DESC, id DESC
        LIMIT $3
        "#,
    )
    .bind(sent_at)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// The filters of the message list, and where the page starts.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<&'static str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Only ids below this one: the last id of the previous page.
    pub before_id: Option<i64>,
}

/// One page of messages, newest (highest id) first.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn list_messages(
    pool: &PgPool,
    filter: &MessageFilter,
    limit: u32,
) -> Result<Vec<StoredMessage>, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        SELECT id, phone_number, content, status, attempts, provider_message_id,
               sent_at, last_error, created_at
        FROM messages
        WHERE id < $1
          AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR created_at >= $3)
          AND ($4::timestamptz IS NULL OR created_at < $4)
        ORDER BY id DESC
        LIMIT $5
        "#,
    )
    .bind(filter.before_id.unwrap_or(i64::MAX))
    .bind(filter.status)
    .bind(filter.created_after)
    .bind(filter.created_before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

/// Stores a new pending message.
#[tracing::instrument(skip_all)]
pub async fn insert_message(
    pool: &PgPool,
    phone_number: &PhoneNumber,
    content: &Content,
) -> Result<StoredMessage, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        INSERT INTO messages (phone_number, content) VALUES ($1, $2)
        RETURNING id, phone_number, content, status, attempts, provider_message_id,
                  sent_at, last_error, created_at
        "#,
    )
    .bind(phone_number.as_ref())
    .bind(content.as_ref())
    .fetch_one(pool)
    .await
}

/// One message by id.
#[tracing::instrument(skip_all, fields(message_id = id))]
pub async fn find_message(pool: &PgPool, id: i64) -> Result<Option<StoredMessage>, sqlx::Error> {
    sqlx::query_as::<_, StoredMessage>(
        r#"
        SELECT id, phone_number, content, status, attempts, provider_message_id,
               sent_at, last_error, created_at
        FROM messages WHERE id = $1
        "#,
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The fleet's shared state (cluster scope).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClusterState {
    pub running: bool,
    pub last_tick_at: Option<DateTime<Utc>>,
    pub next_tick_at: DateTime<Utc>,
}

/// An instance with a recent heartbeat.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InstanceInfo {
    pub instance_id: String,
    /// `cluster` or `instance`.
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
}

/// Creates the fleet's state on a fresh database, running or not; an
/// existing state is kept. Returns whether sending runs.
pub async fn init_cluster_state(pool: &PgPool, running: bool) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO dispatch_state (id, running) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(running)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT running FROM dispatch_state WHERE id = 1")
        .fetch_one(pool)
        .await
}

/// Starts or stops the fleet. Starting a stopped fleet makes its next tick
/// due at once; starting a running one changes nothing. Every instance hears
/// of a change through `NOTIFY dispatch_state`.
#[tracing::instrument(skip_all, fields(running))]
pub async fn set_cluster_running(
    pool: &PgPool,
    running: bool,
) -> Result<ClusterState, sqlx::Error> {
    let update = sqlx::query_as::<_, ClusterState>(
        r#"
        UPDATE dispatch_state
        SET next_tick_at = CASE WHEN $1 AND NOT running THEN now() ELSE next_tick_at END,
            running = $1,
            updated_at = now()
        WHERE id = 1
        RETURNING running, last_tick_at, next_tick_at
        "#,
    )
    .bind(running)
    .fetch_one(pool);
    bounded(update).await
}

/// The fleet's state.
pub async fn cluster_state(pool: &PgPool) -> Result<ClusterState, sqlx::Error> {
    let read = sqlx::query_as::<_, ClusterState>(
        "SELECT running, last_tick_at, next_tick_at FROM dispatch_state WHERE id = 1",
    )
    .fetch_one(pool);
    bounded(read).await
}

/// Records that this instance is alive; returns whether the fleet runs.
pub async fn heartbeat(pool: &PgPool, instance_id: &str, scope: &str) -> Result<bool, sqlx::Error> {
    let beat = sqlx::query_scalar(
        r#"
        WITH beat AS (
            INSERT INTO dispatch_instances (instance_id, scope) VALUES ($1, $2)
            ON CONFLICT (instance_id) DO UPDATE SET seen_at = now(), scope = $2
        )
        SELECT running FROM dispatch_state WHERE id = 1
        "#,
    )
    .bind(instance_id)
    .bind(scope)
    .fetch_one(pool);
    bounded(beat).await
}

/// Instances seen within `within`, oldest first.
pub async fn live_instances(
    pool: &PgPool,
    within: Duration,
) -> Result<Vec<InstanceInfo>, sqlx::Error> {
    sqlx::query_as::<_, InstanceInfo>(
        r#"
        SELECT instance_id, scope, started_at, seen_at FROM dispatch_instances
        WHERE seen_at > now() - $1 * interval '1 millisecond'
        ORDER BY started_at, instance_id
        "#,
    )
    .bind(millis(within))
    .fetch_all(pool)
    .await
}

/// Folds the count deltas into one row per status, so that counting stays a
/// sum over a few rows. Safe to run anywhere, concurrently.
pub async fn fold_count_deltas(pool: &PgPool) -> Result<(), sqlx::Error> {
    let fold = sqlx::query(
        r#"
        WITH folded AS (DELETE FROM message_count_deltas RETURNING status, n)
        INSERT INTO message_count_deltas (status, n)
        SELECT status, sum(n) FROM folded GROUP BY status HAVING sum(n) <> 0
        "#,
    )
    .execute(pool);
    bounded(fold).await.map(|_| ())
}

/// Whether PostgreSQL answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
