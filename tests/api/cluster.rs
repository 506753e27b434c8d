//! Several instances of the real binary on one database and one provider.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_provider::{Behaviour, MockProvider};
use sqlx::PgPool;

use crate::helpers::{count, rows_in, service_vars, Api};
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
    let times = provider
        .calls()
        .iter()
        .map(|call| call.received_at_ms)
        .collect();
    most_within(times, window)
}

/// Records every turn the fleet takes, with a table and trigger of the
/// test's own on `dispatch_state`: when the turn was taken and when it had
/// come due, both on PostgreSQL's clock, which is the one the claim reads.
async fn record_turns(db: &PgPool) {
    sqlx::raw_sql(
        r#"
        CREATE TABLE turns (taken_at timestamptz NOT NULL, due_at timestamptz NOT NULL);
        CREATE FUNCTION record_turn() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO turns VALUES (NEW.last_tick_at, OLD.next_tick_at);
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER record_turn AFTER UPDATE OF last_tick_at ON dispatch_state
            FOR EACH ROW EXECUTE FUNCTION record_turn();
        "#,
    )
    .execute(db)
    .await
    .unwrap();
}

/// The turns recorded by [`record_turns`], in order: (taken, due), in
/// microseconds.
async fn turns(db: &PgPool) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT (extract(epoch FROM taken_at) * 1e6)::bigint, \
                (extract(epoch FROM due_at) * 1e6)::bigint \
         FROM turns ORDER BY taken_at",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// How many claims took the sent rows: the rows of one claim share its
/// instance and its lease's end.
async fn claims_of_sent_rows(db: &PgPool) -> usize {
    let claims: HashSet<(Option<String>, i64)> = rows_in(db, "sent")
        .await
        .into_iter()
        .map(|row| (row.claimed_by, row.due_at.timestamp_micros()))
        .collect();
    claims.len()
}

/// The most of `times` (ms) within any `window`.
fn most_within(mut times: Vec<u64>, window: Duration) -> usize {
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
    let mut senders: Vec<String> = crate::helpers::rows_in(db, "sent")
        .await
        .into_iter()
        .filter_map(|row| row.claimed_by)
        .collect();
    senders.sort_unstable();
    senders.dedup();
    senders
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
    record_turns(&db).await;
    insert_messages(&db, 300).await;

    assert_eq!(instances[0].start().await.0, 200);
    eventually_within(Duration::from_secs(60), "300 messages sent", || async {
        (count(&db, "sent").await == 300).then_some(())
    })
    .await;

    let duplicates = assert_each_message_once(&provider, 300);
    assert_eq!(duplicates, 0, "no key twice");
    // The fleet's one turn per interval, on PostgreSQL's clock: each turn
    // taken only once due, and never within an interval of the one before;
    // every claim of a sent row took one of them (instances keeping paces
    // of their own would claim without a turn). The provider's arrival
    // times are printed only: they also hold the lag of posting a batch,
    // which a loaded machine stretches.
    let turns = turns(&db).await;
    let claims = claims_of_sent_rows(&db).await;
    let arrived = worst_window(&provider, Duration::from_millis(100));
    eprintln!(
        "cluster scope: {} turns for {claims} claims; worst 100 ms window = {arrived} arrivals; duplicates = {duplicates}",
        turns.len()
    );
    for &(taken, due) in &turns {
        assert!(
            taken >= due,
            "a turn taken {} us before it was due",
            due - taken
        );
    }
    for pair in turns.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        // Less a millisecond: the turn's two clock readings, taken in one
        // statement, are microseconds apart.
        assert!(gap >= 199_000, "two turns {gap} us apart");
    }
    assert!(
        claims >= 30,
        "{claims} claims of at most 10 rows for 300 rows"
    );
    assert!(
        claims <= turns.len(),
        "{claims} claims with {} turns",
        turns.len()
    );
    let senders = senders(&db).await;
    assert!(
        senders.len() > 1,
        "more than one instance sent: {senders:?}"
    );
    let (_, status) = instances[2].status().await;
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
    assert_eq!(instances[0].start().await.0, 200);
    eventually("sends from the fleet", || async {
        (provider.calls().len() >= 10).then_some(())
    })
    .await;

    assert_eq!(instances[0].stop().await.0, 200);
    let stopped_at = now_ms();
    for instance in &instances[1..] {
        let (_, status) = instance.status().await;
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

    assert_eq!(instances[2].start().await.0, 200);
    eventually("the fleet to resume", || async {
        (provider.calls().len() > sent_while_stopped + 10).then_some(())
    })
    .await;
    let (_, status) = instances[0].status().await;
    assert_eq!(status["running"], true);
    assert_eq!(
        assert_each_message_once(&provider, provider.calls().len()),
        0
    );
}

#[actix_web::test]
async fn the_fleet_finishes_the_work_of_a_killed_instance() {
    let provider = start_provider(None);
    provider.set_behaviour(Behaviour::slow(Duration::from_millis(300)));
    let pace = [
        ("DISPATCH_AUTOSTART", "false"),
        ("DISPATCH_BATCH_SIZE", "10"),
        ("DISPATCH_INTERVAL_MS", "100"),
        ("PROVIDER_TIMEOUT_MS", "1000"),
        ("LEASE_MS", "2000"),
    ];
    let (mut instances, db) = fleet(3, &provider, &pace).await;
    insert_messages(&db, 200).await;
    assert_eq!(instances[0].start().await.0, 200);
    eventually("the second instance to be sending", || async {
        let busy = crate::helpers::rows_in(&db, "sending")
            .await
            .into_iter()
            .filter(|row| row.claimed_by.as_deref() == Some("instance-2"))
            .count();
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
        assert_eq!(instance.start().await.0, 200);
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
    assert_eq!(instances[0].start().await.0, 200);
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
    let (_, state) = instances[1].status().await;
    assert_eq!(state["running"], true);
    let before = provider.calls().len();
    eventually("the other instance to go on", || async {
        (provider.calls().len() > before + 4).then_some(())
    })
    .await;
}
