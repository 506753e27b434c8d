//! Logging: JSON lines for collectors, or pretty lines for a person, with
//! `RUST_LOG` to choose the level (`info` by default); and the Prometheus
//! metrics recorder behind `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::configuration::LogFormat;

/// Installs the global subscriber once; later calls (as in tests) are no-ops.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // An error here means a subscriber is already installed, which is fine.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The Prometheus recorder of the process, installed on first use; every
/// application in the process (tests run several) shares it.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let sizes = [
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("dispatcher_claim_batch_size".into()),
                        &sizes,
                    )
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                // Only an empty bucket list fails, and these are not empty.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

/// Every counter, with what it counts (`# HELP` of `/metrics`).
const COUNTERS: [(&str, &str); 17] = [
    (
        "dispatcher_messages_deleted_total",
        "Finished messages deleted because they were older than RETENTION_DAYS.",
    ),
    (
        "dispatcher_messages_expired_total",
        "Messages failed because their expires_at passed before they could be sent.",
    ),
    (
        "dispatcher_segments_sent_total",
        "SMS segments of the messages the provider accepted: what it bills.",
    ),
    (
        "dispatcher_provider_breaker_transitions_total",
        "Moves of a provider's circuit breaker, by provider and the state it moved to.",
    ),
    (
        "dispatcher_messages_sent_total",
        "Messages the provider accepted.",
    ),
    (
        "dispatcher_messages_failed_total",
        "Messages given up on: refused, or out of attempts.",
    ),
    (
        "dispatcher_messages_retried_total",
        "Transient failures: messages put back to pending with a backoff.",
    ),
    (
        "dispatcher_messages_deferred_total",
        "Claimed messages not posted because the provider asked to wait.",
    ),
    (
        "dispatcher_ticks_total",
        "Ticks, by result: claimed (rows taken), empty (nothing due, fleet stopped or not this instance's turn), skipped (busy, paused) or failed (PostgreSQL).",
    ),
    (
        "dispatcher_lease_renewals_total",
        "Renewals of the leases of in-flight claims, by result: renewed or failed.",
    ),
    (
        "dispatcher_leases_lost_total",
        "In-flight claims found taken over by another claim when renewing.",
    ),
    (
        "dispatcher_cache_errors_total",
        "Failed Redis writes.",
    ),
    (
        "dispatcher_outcomes_fenced_total",
        "Outcome writes refused because a later claim owns the row.",
    ),
    (
        "dispatcher_outcome_write_retries_total",
        "Outcome writes tried again while PostgreSQL was unreachable.",
    ),
    (
        "dispatcher_receipts_total",
        "Delivery receipts stored, by result: applied, unknown (no message holds the id yet: kept) or stale (a repeat, or older than the one applied).",
    ),
    (
        "dispatcher_receipts_matched_late_total",
        "Kept receipts applied once their message got the id.",
    ),
    (
        "dispatcher_webhook_deliveries_total",
        "Webhook posts, by result: delivered (2xx), retried (to be posted again) or dead (out of attempts).",
    ),
];

/// The counters that always carry labels.
const LABELLED: [&str; 5] = [
    "dispatcher_provider_breaker_transitions_total",
    "dispatcher_ticks_total",
    "dispatcher_lease_renewals_total",
    "dispatcher_receipts_total",
    "dispatcher_webhook_deliveries_total",
];

/// Every gauge.
const GAUGES: [(&str, &str); 11] = [
    (
        "dispatcher_provider_breaker_state",
        "A provider's circuit breaker on this instance: 0 closed, 1 half-open, 2 open.",
    ),
    (
        "dispatcher_scheduler_running",
        "1 while automatic sending runs on this instance.",
    ),
    (
        "dispatcher_queue_depth",
        "Rows by status, read at scrape time.",
    ),
    (
        "dispatcher_queue_oldest_due_age_seconds",
        "How long the due pending message with the lowest id has been due; 0 when none is. Read at scrape time.",
    ),
    (
        "dispatcher_postgres_up",
        "1 when PostgreSQL answered the scrape's queries, 0 when it did not.",
    ),
    (
        "dispatcher_last_tick_timestamp_seconds",
        "Unix time at which the fetcher last took a tick from the scheduler.",
    ),
    (
        "dispatcher_tick_interval_seconds",
        "The longest time between two ticks offered: DISPATCH_INTERVAL_MS in instance scope, at most 1.5 s in cluster scope.",
    ),
    (
        "dispatcher_receipts_kept",
        "Receipts kept for an id no message holds (yet), read at scrape time.",
    ),
    (
        "dispatcher_webhook_outbox_depth",
        "Webhook events not yet delivered (pending or being posted), read at scrape time.",
    ),
    (
        "dispatcher_webhook_outbox_oldest_age_seconds",
        "How long the oldest undelivered webhook event has waited, read at scrape time.",
    ),
    (
        "dispatcher_webhook_events_dead",
        "Webhook events given up on after WEBHOOK_MAX_ATTEMPTS, read at scrape time.",
    ),
];

/// Every histogram; the call duration is in seconds.
const HISTOGRAMS: [(&str, &str); 2] = [
    (
        "dispatcher_provider_call_duration_seconds",
        "Time of one provider call, answer read.",
    ),
    (
        "dispatcher_claim_batch_size",
        "Rows claimed by one tick that claimed any.",
    ),
];

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    for (name, help) in COUNTERS {
        describe_counter!(name, help);
        // At 0 from the start, so that a rate or a ratio over it (the
        // failure ratio when nothing was sent yet) exists before its first
        // event; labelled counters appear with their labels.
        if !LABELLED.contains(&name) {
            metrics::counter!(name).increment(0);
        }
    }
    for (name, help) in GAUGES {
        describe_gauge!(name, help);
    }
    for (name, help) in HISTOGRAMS {
        if name.ends_with("_seconds") {
            describe_histogram!(name, Unit::Seconds, help);
        } else {
            describe_histogram!(name, help);
        }
    }
}
