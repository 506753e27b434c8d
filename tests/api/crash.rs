//! The real binary killed or stopped while provider calls are in flight.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::helpers::{
    count, create_database, eventually, eventually_within, insert_messages, rows_in, service_vars,
    slow_provider, Api,
};
use crate::process::ServiceProcess;

#[actix_web::test]
async fn a_crash_mid_batch_loses_nothing_and_resends_only_after_the_lease_with_the_same_key() {
    let provider = slow_provider(1500);
    let database_url = create_database().await;
    let lease = [
        ("PROVIDER_TIMEOUT_MS", "2000"),
        ("LEASE_MS", "4000"),
        ("DISPATCH_BATCH_SIZE", "5"),
        // Each instance keeps its own pace: the second one's short
        // interval takes over at once.
        ("DISPATCH_SCOPE", "instance"),
    ];
    let mut first = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[
            lease.as_slice(),
            &[("DISPATCH_AUTOSTART", "false"), ("INSTANCE_ID", "first")],
        ]
        .concat(),
    ))
    .await;
    let db = PgPool::connect(&database_url).await.unwrap();
    let ids = insert_messages(&db, 8).await;

    assert_eq!(first.start().await.0, 200);
    eventually("the first batch in flight", || async {
        (provider.calls().len() == 5).then_some(())
    })
    .await;
    let leases: HashMap<i64, DateTime<Utc>> = rows_in(&db, "sending")
        .await
        .into_iter()
        .map(|row| (row.id, row.due_at))
        .collect();
    assert_eq!(leases.len(), 5);
    first.kill();

    let _second = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[
            lease.as_slice(),
            &[("DISPATCH_INTERVAL_MS", "200"), ("INSTANCE_ID", "second")],
        ]
        .concat(),
    ))
    .await;
    eventually_within(Duration::from_secs(20), "every message sent", || async {
        (count(&db, "sent").await == 8).then_some(())
    })
    .await;

    let stats = provider.stats();
    assert_eq!(
        stats.distinct_keys,
        ids.len() as u64,
        "no message lost, each under its own key"
    );
    let mut calls_by_key: HashMap<i64, Vec<u64>> = HashMap::new();
    for call in provider.calls() {
        let key = call.idempotency_key.unwrap().parse().unwrap();
        calls_by_key
            .entry(key)
            .or_default()
            .push(call.received_at_ms);
    }
    for (id, calls) in &calls_by_key {
        match leases.get(id) {
            None => assert_eq!(
                calls.len(),
                1,
                "message {id} was never in flight at the crash"
            ),
            Some(lease_end) => {
                assert_eq!(calls.len(), 2, "message {id} was in flight at the crash");
                let lease_end_ms = lease_end.timestamp_millis() as u64;
                assert!(
                    calls[1] >= lease_end_ms,
                    "message {id} taken over {} ms before its lease ended",
                    lease_end_ms - calls[1]
                );
            }
        }
    }
    let sent_once_ids: Vec<Option<String>> = crate::helpers::rows(&db)
        .await
        .into_iter()
        .map(|row| row.provider_message_id)
        .collect();
    assert!(sent_once_ids.iter().all(Option::is_some));
}

#[actix_web::test]
async fn sigterm_waits_for_in_flight_calls_writes_their_outcomes_and_exits_0() {
    let provider = slow_provider(1000);
    let database_url = create_database().await;
    let mut service = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[
            ("DISPATCH_AUTOSTART", "false"),
            ("DISPATCH_BATCH_SIZE", "3"),
        ],
    ))
    .await;
    let db = PgPool::connect(&database_url).await.unwrap();
    insert_messages(&db, 5).await;
    assert_eq!(service.start().await.0, 200);
    eventually("three calls in flight", || async {
        (provider.calls().len() == 3).then_some(())
    })
    .await;

    let status = service.terminate().await;

    assert_eq!(status.code(), Some(0));
    assert_eq!(count(&db, "sent").await, 3);
    assert_eq!(count(&db, "sending").await, 0);
    assert_eq!(
        count(&db, "pending").await,
        2,
        "nothing claimed after the signal"
    );
    assert_eq!(service.log_count("shut down cleanly"), 1);
}
