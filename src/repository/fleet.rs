//! The fleet's shared state and heartbeats (`dispatch_state`,
//! `dispatch_instances`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{bounded, millis};

/// The fleet's shared state (cluster scope).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClusterState {
    pub running: bool,
    pub last_tick_at: Option<DateTime<Utc>>,
    pub next_tick_at: DateTime<Utc>,
}

/// An instance with a recent heartbeat.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub instance_id: String,
    /// `cluster` or `instance`.
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
}

/// Creates the fleet's state on a fresh database, running or not; an
/// existing state is kept. Returns whether sending runs.
pub async fn init_cluster_state(pool: &PgPool, running: bool) -> Result<bool, sqlx::Error> {
    let insert = sqlx::query(
        "INSERT INTO dispatch_state (id, running) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
    )
    .bind(running)
    .execute(pool);
    bounded(insert).await?;
    bounded(sqlx::query_scalar("SELECT running FROM dispatch_state WHERE id = 1").fetch_one(pool))
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
) -> Result<Vec<InstanceRow>, sqlx::Error> {
    let query = sqlx::query_as::<_, InstanceRow>(
        r#"
        SELECT instance_id, scope, started_at, seen_at FROM dispatch_instances
        WHERE seen_at > now() - $1 * interval '1 millisecond'
        ORDER BY started_at, instance_id
        "#,
    )
    .bind(millis(within))
    .fetch_all(pool);
    bounded(query).await
}
