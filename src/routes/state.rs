//! What every handler may use.

use actix::Addr;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::configuration::{DispatchScope, Secret};
use crate::pipeline::{ProviderBoard, ReceiptActor, SchedulerActor};
use crate::redis::RedisPool;

/// The pools, the scheduler, and what the answers tell of the settings.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: Option<RedisPool>,
    pub scheduler: Addr<SchedulerActor>,
    /// Where `POST /provider/receipts` sends what it receives.
    pub receipts: Addr<ReceiptActor>,
    /// The providers' breakers and rates, for status.
    pub providers: ProviderBoard,
    /// `RECEIPT_AUTH_KEY`: when set, receipts need it in `x-receipt-key`.
    pub receipt_key: Option<Secret>,
    /// `WEBHOOK_ALLOWED_HOSTS`: the hosts a `callback_url` may name; empty
    /// allows any.
    pub allowed_hosts: Vec<String>,
    /// `WEBHOOK_URL`, for the events of messages a handler fails.
    pub webhook_url: Option<std::sync::Arc<str>>,
    pub batch_size: u32,
    pub interval_ms: u64,
    pub scope: DispatchScope,
    pub instance_id: String,
    /// The keys `/api/*` accepts: `API_KEY`, and `API_KEY_PREVIOUS` while a
    /// rotation is under way. Empty: no check.
    pub api_keys: Vec<Secret>,
    pub metrics: PrometheusHandle,
}
