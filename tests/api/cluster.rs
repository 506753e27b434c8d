//! Several instances of the real binary on one database and one provider.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use message_dispatcher::mock_provider::{Behaviour, MockProvider};
use sqlx::PgPool;

use crate::crash::{count, service_vars};
use crate::helpers::{
    create_database, eventually, eventually_within, insert_messages, start_provider,
};
use crate::process::ServiceProcess;

/// Starts `n` instances named `instance-1`.. on one database, the first one
/// alone so that it applies the migrations; returns them and a pool.
async fn fleet(
    n: usize,
    provider: &MockProvider,
    extra: &[(&str, &str)],
) -> (Vec<ServiceProcess>, PgPool) {
    let database_url = create_database().await;
    let mut instances = Vec::with_capacity(n);
    for i in 1..=n {
        let name = format!("instance-{i}");
        let vars = service_vars(
            &database_url,
            provider,
            &[extra, &[("INSTANCE_ID", name.as_str())]].concat(),
        );
        instances.push(ServiceProcess::start(&vars).await);
    }
    (instances, PgPool::connect(&database_url).await.unwrap())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The most calls the provider received within any `window`.
fn worst_window(provider: &MockProvider, window: Duration) -> usize {
    let mut times: Vec<u64> = provider
        .calls()
        .iter()
        .map(|call| call.received_at_ms)
        .collect();
    times.sort_unstable();
    let window = window.as_millis() as u64;
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|&&t| t < times[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn assert_each_message_once(provider: &MockProvider, rows: usize) -> usize {
    let calls = provider.calls();
    let keys: HashSet<&str> = calls
        .iter()
        .filter_map(|call| call.idempotency_key.as_deref())
        .collect();
    assert_eq!(keys.len(), rows, "every message reached the provider");
    calls.len() - keys.len()
}

async fn senders(db: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT DISTINCT claimed_by FROM messages WHERE status = 'sent' ORDER BY 1")
        .fetch_all(db)
        .await
        .unwrap()
}

#[actix_web::test]
async fn three_instances_share_one_rate_and_send_each_message_once() {
    let provider = start_provider(None);
    let pace = [
        ("DISPATCH_AUTOSTART", "false"),
        ("DISPATCH_BATCH_SIZE", "10"),
        ("DISPATCH_INTERVAL_MS", "200"),
    ];
    let (instances, db) = fleet(3, &provider, &pace).await;
    insert_messages(&db, 300).await;

    assert_eq!(instances[0].post("/api/messaging/start").await, 200);
    eventually_within(Duration::from_secs(60), "300 messages sent", || async {
        (count(&db, "sent").await == 300).then_some(())
    })
    .await;

    let duplicates = assert_each_message_once(&provider, 300);
    assert_eq!(duplicates, 0, "no key twice");
    // The next batch's claim comes one interval after this one's, and the
    // calls of a batch reach the provider within a few milliseconds, or up
    // to some tens on a loaded machine (the suite runs the soak alongside):
    // a window of half the interval must never hold two batches. Instances
    // keeping paces of their own would put 30 in it.
    let worst = worst_window(&provider, Duration::from_millis(100));
    let full = worst_window(&provider, Duration::from_millis(200));
    eprintln!("cluster scope: worst 100 ms window = {worst}, worst 200 ms window = {full}, duplicates = {duplicates}");
    assert!(worst <= 10, "{worst} sends within one interval");
    let senders = senders(&db).await;
    assert!(
        senders.len() > 1,
        "more than one instance sent: {senders:?}"
    );
    let (_, status) = instances[2].get("/api/messaging/status").await;
    assert_eq!(status["scope"], "cluster");
    assert_eq!(status["instances"].as_array().map(Vec::len), Some(3));
}

#[actix_web::test]
async fn stop_on_one_instance_stops_them_all_and_start_on_another_resumes_them() {
    let provider = start_provider(None);
    let pace = [
        ("DISPATCH_AUTOSTART", "false"),
        ("DISPATCH_BATCH_SIZE", "2"),
        ("DISPATCH_INTERVAL_MS", "50"),
    ];
    let (instances, db) = fleet(3, &provider, &pace).await;
    insert_messages(&db, 1000).await;
    assert_eq!(instances[0].post("/api/messaging/start").await, 200);
    eventually("sends from the fleet", || async {
        (provider.calls().len() >= 10).then_some(())
    })
    .await;

    assert_eq!(instances[0].post("/api/messaging/stop").await, 200);
    let stopped_at = now_ms();
    for instance in &instances[1..] {
        let (_, status) = instance.get("/api/messaging/status").await;
        assert_eq!(status["running"], false, "{}", instance.address);
    }
    // An absence: wait out the second the promise allows, and more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let last_call = provider
        .calls()
        .iter()
        .map(|call| call.received_at_ms)
        .max()
        .unwrap();
    assert!(
        last_call <= stopped_at + 1000,
        "a send {} ms after the stop",
        last_call - stopped_at
    );
    let sent_while_stopped = provider.calls().len();

    assert_eq!(instances[2].post("/api/messaging/start").await, 200);
    eventually("the fleet to resume", || async {
        (provider.calls().len() > sent_while_stopped + 10).then_some(())
    })
    .await;
    let (_, status) = instances[0].get("/api/messaging/status").await;
    assert_eq!(status["running"], true);
    assert_eq!(
        assert_each_message_once(&provider, provider.calls().len()),
        0
    );
}

#[actix_web::test]
async fn the_fleet_finishes_the_work_of_a_killed_instance() {
    let provider = start_provider(None);
    provider.set_behaviour(Behaviour {
        latency: Duration::from_millis(300),
        ..Behaviour::accept_all()
    });
    let pace = [
        ("DISPATCH_AUTOSTART", "false"),
        ("DISPATCH_BATCH_SIZE", "10"),
        ("DISPATCH_INTERVAL_MS", "100"),
        ("PROVIDER_TIMEOUT_MS", "1000"),
        ("LEASE_MS", "2000"),
    ];
    let (mut instances, db) = fleet(3, &provider, &pace).await;
    insert_messages(&db, 200).await;
    assert_eq!(instances[0].post("/api/messaging/start").await, 200);
    eventually("the second instance to be sending", || async {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages WHERE status = 'sending' AND claimed_by = 'instance-2'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        (busy > 0).then_some(())
    })
    .await;

    instances[1].kill();

    eventually_within(Duration::from_secs(60), "every message sent", || async {
        (count(&db, "sent").await == 200).then_some(())
    })
    .await;
    let duplicates = assert_each_message_once(&provider, 200);
    eprintln!("cluster scope, one instance killed: {duplicates} calls repeated with the same key");
    assert!(
        duplicates <= 10,
        "only the killed instance's batch in flight is posted again"
    );
}

#[actix_web::test]
async fn instance_scope_lets_each_instance_keep_its_own_rate() {
    let provider = start_provider(None);
    let pace = [
        ("DISPATCH_SCOPE", "instance"),
        ("DISPATCH_AUTOSTART", "false"),
        ("DISPATCH_BATCH_SIZE", "5"),
        ("DISPATCH_INTERVAL_MS", "200"),
    ];
    let (instances, db) = fleet(3, &provider, &pace).await;
    insert_messages(&db, 150).await;

    for instance in &instances {
        assert_eq!(instance.post("/api/messaging/start").await, 200);
    }
    eventually_within(Duration::from_secs(60), "150 messages sent", || async {
        (count(&db, "sent").await == 150).then_some(())
    })
    .await;

    assert_eq!(assert_each_message_once(&provider, 150), 0);
    let worst = worst_window(&provider, Duration::from_millis(150));
    eprintln!("instance scope: worst 150 ms window = {worst} sends (one instance's batch is 5)");
    assert!(
        worst > 5,
        "more than one instance's batch within an interval"
    );
    assert_eq!(senders(&db).await.len(), 3);
}

#[actix_web::test]
async fn shutting_one_instance_down_leaves_the_fleet_running() {
    let provider = start_provider(None);
    let pace = [
        ("DISPATCH_AUTOSTART", "false"),
        ("DISPATCH_BATCH_SIZE", "2"),
        ("DISPATCH_INTERVAL_MS", "50"),
    ];
    let (mut instances, db) = fleet(2, &provider, &pace).await;
    insert_messages(&db, 1000).await;
    assert_eq!(instances[0].post("/api/messaging/start").await, 200);
    eventually("sends from the fleet", || async {
        (provider.calls().len() >= 4).then_some(())
    })
    .await;

    let status = instances[0].terminate().await;

    assert_eq!(status.code(), Some(0));
    let running: bool = sqlx::query_scalar("SELECT running FROM dispatch_state")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(running, "a graceful shutdown must not stop the fleet");
    let (_, state) = instances[1].get("/api/messaging/status").await;
    assert_eq!(state["running"], true);
    let before = provider.calls().len();
    eventually("the other instance to go on", || async {
        (provider.calls().len() > before + 4).then_some(())
    })
    .await;
}
