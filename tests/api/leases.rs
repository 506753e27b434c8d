//! Leases kept alive while calls are in flight: a short `LEASE_MS` is safe
//! whatever `PROVIDER_TIMEOUT_MS` is, and a dead or frozen instance's claims
//! are taken over one lease after its last renewal.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use message_dispatcher::repository::renew_leases;

use crate::helpers::claim_due;
use sqlx::PgPool;

use crate::helpers::{count, service_vars, slow_provider, Api};
use crate::helpers::{create_database, eventually, spawn_app_with, TestOptions};
use crate::process::ServiceProcess;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `LEASE_MS=1000` in instance scope, for the instances of these tests.
const SHORT_LEASE: [(&str, &str); 2] = [("LEASE_MS", "1000"), ("DISPATCH_SCOPE", "instance")];

/// An instance named `first` with the call of one message in flight to a
/// provider that answers after `latency_ms`; the provider, the database
/// URL, the instance, a pool, and the message's id.
async fn one_call_in_flight(
    latency_ms: u64,
) -> (
    std::sync::Arc<mock_provider::MockProvider>,
    String,
    ServiceProcess,
    PgPool,
    i64,
) {
    let provider = slow_provider(latency_ms);
    let database_url = create_database().await;
    let first = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[
            SHORT_LEASE.as_slice(),
            &[("DISPATCH_AUTOSTART", "false"), ("INSTANCE_ID", "first")],
        ]
        .concat(),
    ))
    .await;
    let db = PgPool::connect(&database_url).await.unwrap();
    let id = crate::helpers::insert_messages(&db, 1).await[0];
    assert_eq!(first.start().await.0, 200);
    eventually("the call in flight", || async {
        (provider.calls().len() == 1).then_some(())
    })
    .await;
    (provider, database_url, first, db, id)
}

/// A second instance that claims every 100 ms.
async fn second_instance(
    database_url: &str,
    provider: &mock_provider::MockProvider,
) -> ServiceProcess {
    ServiceProcess::start(&service_vars(
        database_url,
        provider,
        &[
            SHORT_LEASE.as_slice(),
            &[("DISPATCH_INTERVAL_MS", "100"), ("INSTANCE_ID", "second")],
        ]
        .concat(),
    ))
    .await
}

/// When the lease of the one row ends.
async fn claimed_until(db: &PgPool) -> chrono::DateTime<chrono::Utc> {
    crate::helpers::rows_in(db, "sending").await[0].due_at
}

#[actix_web::test]
async fn a_call_slower_than_the_lease_is_posted_once_while_another_instance_keeps_claiming() {
    let provider = slow_provider(3500);
    let first = spawn_app_with(
        TestOptions {
            provider: Some(provider.clone()),
            ..Default::default()
        }
        .var("LEASE_MS", 1000)
        .var("PROVIDER_TIMEOUT_MS", 10_000)
        .var("DISPATCH_AUTOSTART", false)
        .var("INSTANCE_ID", "first"),
    )
    .await;
    let id = first.insert_messages(1).await[0];
    // Start ticks at once, then not again for an hour.
    let (status, _) = first.start().await;
    assert_eq!(status, 200);
    first.pipeline.settle().await;
    assert_eq!(
        count(&first.db, "sending").await,
        1,
        "the call is in flight"
    );

    // Another instance on the same database claims every 100 ms for as long
    // as the call runs: three and a half leases.
    let second = spawn_app_with(
        TestOptions {
            database_url: Some(first.database_url.clone()),
            provider: Some(provider.clone()),
            ..Default::default()
        }
        .var("LEASE_MS", 1000)
        .var("DISPATCH_INTERVAL_MS", 100)
        .var("INSTANCE_ID", "second"),
    )
    .await;
    first.pipeline.wait_idle().await;

    let keys: Vec<Option<String>> = provider
        .calls()
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(keys, [Some(id.to_string())], "posted once");
    let row = crate::helpers::row(&first.db, id).await;
    let status = row.status;
    let claimed_by = row.claimed_by.expect("claimed");
    assert_eq!((status.as_str(), claimed_by.as_str()), ("sent", "first"));
    drop(second);
}

#[actix_web::test]
async fn a_renewal_extends_only_claims_still_held_under_their_token() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let ids = app.insert_messages(2).await;
    let lost = claim_due(&app.db, 1, Duration::ZERO, "a").await.unwrap();
    let taken_over = claim_due(&app.db, 1, Duration::from_secs(60), "b")
        .await
        .unwrap();
    assert_eq!(lost[0].id, taken_over[0].id);
    let kept = claim_due(&app.db, 1, Duration::from_millis(1), "a")
        .await
        .unwrap();
    assert_eq!(kept[0].id, ids[1]);

    let held = [
        (lost[0].id, lost[0].claim_token),
        (kept[0].id, kept[0].claim_token),
    ];
    let reported = renew_leases(&app.db, &held, Duration::from_secs(30))
        .await
        .unwrap();

    assert_eq!(reported, [ids[0]], "the taken-over claim is reported lost");
    let leases: Vec<(i64, String, f64)> = app
        .rows()
        .await
        .into_iter()
        .map(|row| (row.id, row.claimed_by.unwrap_or_default(), row.due_in))
        .collect();
    assert_eq!(leases[0].1, "b");
    assert!(
        (55.0..=60.0).contains(&leases[0].2),
        "b's lease is left alone: {leases:?}"
    );
    assert!(
        (25.0..=30.0).contains(&leases[1].2),
        "a's live claim is renewed: {leases:?}"
    );
}

#[actix_web::test]
async fn sigkill_mid_call_with_a_short_lease_is_taken_over_within_about_a_lease_with_the_same_key()
{
    // The tests' PROVIDER_TIMEOUT_MS (5 s) is five leases.
    let (provider, database_url, mut first, db, id) = one_call_in_flight(2500).await;
    // A second instance claims every 100 ms all along.
    let _second = second_instance(&database_url, &provider).await;
    // Half a lease past the claim's own lease: only renewals kept the row
    // from the second instance.
    let first_lease_end: chrono::DateTime<chrono::Utc> = claimed_until(&db).await;
    eventually("half a lease past the claim's own lease", || async {
        let past: bool = sqlx::query_scalar("SELECT now() > $1 + interval '500 milliseconds'")
            .bind(first_lease_end)
            .fetch_one(&db)
            .await
            .unwrap();
        past.then_some(())
    })
    .await;
    assert_eq!(provider.calls().len(), 1, "no take-over while renewed");
    let lease_end = claimed_until(&db).await;
    assert!(lease_end > first_lease_end, "the lease was renewed");
    let killed_at = now_ms();
    first.kill();

    eventually("the row sent by the second instance", || async {
        (count(&db, "sent").await == 1).then_some(())
    })
    .await;
    let calls = provider.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.idempotency_key == Some(id.to_string())));
    let taken_over_at = calls[1].received_at_ms;
    assert!(
        taken_over_at >= lease_end.timestamp_millis() as u64,
        "never before the last renewed lease ended"
    );
    // One lease, one claim interval, and room for a loaded machine.
    assert!(
        taken_over_at - killed_at < 1000 + 100 + 2000,
        "taken over {} ms after the kill",
        taken_over_at - killed_at
    );
    assert_eq!(provider.stats().distinct_keys, 1);
}

#[actix_web::test]
async fn a_frozen_instance_loses_its_lease_and_its_late_outcome_is_fenced_when_it_resumes() {
    let (provider, database_url, first, db, id) = one_call_in_flight(2000).await;

    first.freeze();
    let _second = second_instance(&database_url, &provider).await;
    eventually("the second instance to send it", || async {
        (count(&db, "sent").await == 1).then_some(())
    })
    .await;
    first.thaw();

    eventually("the late outcome to be fenced out", || async {
        (first.log_count("outcome fenced out") == 1).then_some(())
    })
    .await;
    let row = crate::helpers::row(&db, id).await;
    let claimed_by = row.claimed_by.expect("claimed");
    let provider_message_id = row.provider_message_id.expect("sent");
    assert_eq!(claimed_by, "second");
    let calls = provider.calls();
    assert_eq!(calls.len(), 2, "posted again after the lease, once");
    assert!(calls
        .iter()
        .all(|c| c.idempotency_key == Some(id.to_string())));
    assert_eq!(
        calls[1].message_id.as_deref(),
        Some(provider_message_id.as_str()),
        "the row keeps the id the provider gave for its key"
    );
    assert_eq!(provider.stats().distinct_keys, 1);
}

#[actix_web::test]
async fn a_lease_shorter_than_the_provider_timeout_starts_and_says_how_it_is_kept() {
    let provider = slow_provider(0);
    let database_url = create_database().await;
    for lease in ["3000", "1"] {
        let service = ServiceProcess::start(&service_vars(
            &database_url,
            &provider,
            &[("LEASE_MS", lease), ("DISPATCH_AUTOSTART", "false")],
        ))
        .await;
        assert_eq!(
            service.log_count("claims are leased and renewed"),
            1,
            "LEASE_MS={lease}"
        );
        let raised = service.log_count("LEASE_MS is below the shortest lease");
        assert_eq!(raised, usize::from(lease == "1"), "LEASE_MS={lease}");
    }
}
