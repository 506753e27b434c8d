//! The wire shape of the answers about sending: start, stop, status and
//! activity.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::OutboxStatus;
use crate::configuration::DispatchScope;
use crate::pipeline::ProviderState;
use crate::repository::{CountsByStatus, InstanceRow, MinuteRow};

/// Whether start/stop and the rate are shared by the fleet or per instance.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Cluster,
    Instance,
}

impl From<DispatchScope> for Scope {
    fn from(scope: DispatchScope) -> Self {
        match scope {
            DispatchScope::Cluster => Scope::Cluster,
            DispatchScope::Instance => Scope::Instance,
        }
    }
}

/// Rows by status; of the sent ones, those a receipt said were delivered
/// or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub delivered: i64,
    pub undelivered: i64,
    /// The SMS segments of the sent messages: what the providers bill.
    pub segments_sent: i64,
}

impl From<CountsByStatus> for StatusCounts {
    fn from(counts: CountsByStatus) -> Self {
        StatusCounts {
            pending: counts.pending,
            sending: counts.sending,
            sent: counts.sent,
            failed: counts.failed,
            delivered: counts.delivered,
            undelivered: counts.undelivered,
            segments_sent: counts.segments_sent,
        }
    }
}

/// An instance with a recent heartbeat.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceInfo {
    pub instance_id: String,
    /// `cluster` or `instance`.
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
}

impl From<InstanceRow> for InstanceInfo {
    fn from(row: InstanceRow) -> Self {
        InstanceInfo {
            instance_id: row.instance_id,
            scope: row.scope,
            started_at: row.started_at,
            seen_at: row.seen_at,
        }
    }
}

/// The answer of start, stop and status.
#[derive(Serialize, ToSchema)]
pub struct MessagingStatus {
    /// Whether automatic sending runs.
    pub running: bool,
    /// When the last tick fired (cluster scope: the fleet's).
    pub last_tick_at: Option<DateTime<Utc>>,
    /// When the next tick fires; null while stopped.
    pub next_tick_at: Option<DateTime<Utc>>,
    pub scope: Scope,
    /// `INSTANCE_ID` of the instance that answered.
    pub instance_id: String,
    /// `DISPATCH_BATCH_SIZE`: messages claimed per tick.
    pub batch_size: u32,
    /// `DISPATCH_INTERVAL_MS`: time between ticks.
    pub interval_ms: u64,
    /// Rows by status; null while PostgreSQL is unavailable.
    pub counts: Option<StatusCounts>,
    /// Instances with a heartbeat in the last few seconds, on this database;
    /// null while PostgreSQL is unavailable.
    pub instances: Option<Vec<InstanceInfo>>,
    /// When the oldest pending or sending message was created: the queue's
    /// age. Null when the queue is empty or PostgreSQL unavailable.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// The webhook outbox; null while PostgreSQL is unavailable.
    pub webhooks: Option<OutboxStatus>,
    /// Delivery receipts kept for an id no message holds (yet); null while
    /// PostgreSQL is unavailable.
    pub receipts_kept: Option<i64>,
    /// Pending messages whose `send_at` is still ahead; null while
    /// PostgreSQL is unavailable.
    pub scheduled: Option<i64>,
    /// Messages that expired before they could be sent (failed); null while
    /// PostgreSQL is unavailable.
    pub expired: Option<i64>,
    /// The providers, in the order they are tried, as this instance sees
    /// them (each instance keeps its own breakers).
    pub providers: Vec<ProviderView>,
}

/// One provider in status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub name: String,
    /// `closed` (calls go), `open` (taken out until its cool-down ends),
    /// `half_open` (one probe decides).
    #[schema(example = "closed")]
    pub breaker: String,
    /// Its rate limit, kept by the whole fleet; null: none.
    pub max_per_second: Option<u32>,
    /// The numbers it serves, by prefix; empty: any.
    pub prefixes: Vec<String>,
    /// How long its `Retry-After` still holds calls back; null: not paused.
    pub paused_for_ms: Option<u64>,
}

impl From<ProviderState> for ProviderView {
    fn from(state: ProviderState) -> Self {
        ProviderView {
            name: state.name,
            breaker: state.breaker.to_owned(),
            max_per_second: state.max_per_second,
            prefixes: state.prefixes,
            paused_for_ms: state.paused_for.map(|d| d.as_millis() as u64),
        }
    }
}

/// Outcomes in one minute.
#[derive(Debug, Serialize, ToSchema)]
pub struct MinuteActivity {
    pub minute: DateTime<Utc>,
    pub sent: i64,
    pub retried: i64,
    pub failed: i64,
}

impl From<MinuteRow> for MinuteActivity {
    fn from(row: MinuteRow) -> Self {
        MinuteActivity {
            minute: row.minute,
            sent: row.sent,
            retried: row.retried,
            failed: row.failed,
        }
    }
}

/// Outcomes per minute over the last hour.
#[derive(Serialize, ToSchema)]
pub struct Activity {
    /// Oldest first; minutes without any outcome are left out.
    pub minutes: Vec<MinuteActivity>,
}
