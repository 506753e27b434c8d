//! The soak: a fleet of the real binary sends at a high rate for a while
//! (`SOAK_SECONDS`, 20 by default, as in CI; `scripts/soak` runs it for ten
//! minutes), while a chaos loop kills and restarts instances (SIGKILL,
//! SIGTERM), restarts PostgreSQL and Redis, and flips the provider between
//! 202, 500, 429 with `Retry-After`, and slow answers. At the end every
//! message is `sent` or `failed` with a reason, the provider accepted
//! exactly the keys of the rows sent, under the ids the rows hold, no call
//! came after its row was sent, no row is left `sending`, and the memory of
//! the instance that ran all along did not grow.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mock_provider::{Behaviour, MockProvider};
use sqlx::PgPool;

use crate::helpers::service_vars;
use crate::helpers::{eventually_within, start_provider};
use crate::process::{PrivatePostgres, PrivateRedis, ServiceProcess};

/// How long the chaos lasts.
fn soak_duration() -> Duration {
    let seconds = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(seconds)
}

/// Messages enqueued per second while the chaos lasts: 200 by default, a
/// load the suite can run beside its timing-sensitive tests; `scripts/soak`
/// asks for 500.
fn soak_rate() -> u64 {
    std::env::var("SOAK_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// The kinds of fault to deal (`SOAK_FAULTS`, names as in the figures,
/// comma-separated, e.g. `Calm` or `Sigkill,RestartPostgres`): all by
/// default. For telling which fault a change of memory follows.
fn soak_faults() -> Vec<Chaos> {
    let wanted = std::env::var("SOAK_FAULTS").unwrap_or_default();
    let chosen: Vec<Chaos> = CHAOS
        .into_iter()
        .filter(|chaos| {
            wanted
                .split(',')
                .any(|name| name.trim() == format!("{chaos:?}"))
        })
        .collect();
    if chosen.is_empty() {
        CHAOS.to_vec()
    } else {
        chosen
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Enqueues `rate` messages a second for `period`, in batches every 100 ms;
/// returns how many were stored. PostgreSQL may be restarting: a batch it
/// refuses is simply not stored.
async fn produce(db: &PgPool, rate: u64, period: Duration) -> u64 {
    let started = Instant::now();
    let (mut stored, mut due) = (0u64, 0f64);
    while started.elapsed() < period {
        due += rate as f64 / 10.0;
        let batch = due as i64;
        due -= batch as f64;
        let insert = sqlx::query(
            "INSERT INTO messages (phone_number, content) \
             SELECT '+90555' || lpad((n % 10000000)::text, 7, '0'), 'soak ' || n \
             FROM generate_series(1, $1) AS n",
        )
        .bind(batch)
        .execute(db);
        if let Ok(done) = insert.await {
            stored += done.rows_affected();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stored
}

/// The fleet's variables: cluster scope, a high rate, short leases and
/// time-outs, enough attempts that the chaos cannot exhaust them.
fn fleet_vars(
    database_url: &str,
    redis_url: &str,
    provider: &MockProvider,
    name: &str,
) -> Vec<(String, String)> {
    service_vars(
        database_url,
        provider,
        &[
            ("REDIS_URL", redis_url),
            ("INSTANCE_ID", name),
            ("DISPATCH_SCOPE", "cluster"),
            ("DISPATCH_BATCH_SIZE", "500"),
            ("DISPATCH_INTERVAL_MS", "100"),
            ("LEASE_MS", "2000"),
            ("PROVIDER_TIMEOUT_MS", "1000"),
            ("MAX_ATTEMPTS", "12"),
            ("RETRY_BASE_MS", "10"),
            // Journey lines at this rate would fill the test's memory.
            ("RUST_LOG", "warn,message_dispatcher::startup=info"),
        ],
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Chaos {
    Sigkill,
    Sigterm,
    RestartPostgres,
    RestartRedis,
    Provider500,
    Provider429,
    ProviderTimesOut,
    ProviderSlow,
    Calm,
}

const CHAOS: [Chaos; 9] = [
    Chaos::Sigkill,
    Chaos::Sigterm,
    Chaos::RestartPostgres,
    Chaos::RestartRedis,
    Chaos::Provider500,
    Chaos::Provider429,
    Chaos::ProviderTimesOut,
    Chaos::ProviderSlow,
    Chaos::Calm,
];

#[actix_web::test]
async fn a_soak_under_chaos_ends_with_every_message_sent_or_failed_each_accepted_once() {
    let postgres = PrivatePostgres::start().await;
    let mut redis = PrivateRedis::start().await;
    let provider = start_provider(None);
    let (database_url, redis_url) = (postgres.url(), redis.url());
    let vars = |name: &str| fleet_vars(&database_url, &redis_url, &provider, name);
    // The first instance runs all along, for its memory; the others are the
    // chaos's to kill.
    let steady = ServiceProcess::start(&vars("steady")).await;
    let mut others = vec![
        ServiceProcess::start(&vars("chaos-1")).await,
        ServiceProcess::start(&vars("chaos-2")).await,
    ];
    // A short wait for a connection: PostgreSQL restarts under the producer.
    let db = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect(&database_url)
        .await
        .unwrap();
    let (duration, rate) = (soak_duration(), soak_rate());

    let started = Instant::now();
    let mut enqueued = produce(&db, rate, Duration::from_secs(2)).await;
    let first_rss = rss_kib(steady.pid());
    let mut peak_rss = first_rss;
    // The steady instance's memory at the end of each round of faults.
    let mut rss_by_round: Vec<u64> = Vec::new();
    let mut faults: BTreeMap<Chaos, u32> = BTreeMap::new();
    let mut unclean_exits = 0;
    // Every kind of fault once per round, in a random order; at least one
    // round, however short the soak.
    let mut deck: Vec<Chaos> = Vec::new();
    let mut rounds = 0;
    while started.elapsed() < duration || rounds == 0 || !deck.is_empty() {
        if deck.is_empty() {
            if started.elapsed() >= duration {
                break;
            }
            deck = soak_faults();
            fastrand::shuffle(&mut deck);
        }
        let chaos = deck.pop().unwrap();
        if deck.is_empty() {
            rounds += 1;
        }
        *faults.entry(chaos).or_default() += 1;
        provider.set_behaviour(Behaviour::accept_all());
        let step = Duration::from_millis(fastrand::u64(1000..2500));
        match chaos {
            Chaos::Sigkill | Chaos::Sigterm => {
                let which = fastrand::usize(..others.len());
                let name = format!("chaos-{}", which + 1);
                if chaos == Chaos::Sigkill {
                    others[which].kill();
                } else {
                    let status = others[which]
                        .terminate_within(Duration::from_secs(30))
                        .await;
                    if status.code() != Some(0) {
                        unclean_exits += 1;
                    }
                }
                enqueued += produce(&db, rate, step).await;
                others[which] = ServiceProcess::start(&vars(&name)).await;
            }
            Chaos::RestartPostgres => {
                postgres.halt();
                enqueued += produce(&db, rate, step).await;
                postgres.resume().await;
            }
            Chaos::RestartRedis => {
                redis.stop();
                enqueued += produce(&db, rate, step).await;
                redis.restart().await;
            }
            _ => {
                let failing = |status: u16, rate: f64, retry_after: Option<u64>| Behaviour {
                    failure_rate: rate,
                    failure_status: actix_web::http::StatusCode::from_u16(status).unwrap(),
                    retry_after_secs: retry_after,
                    ..Behaviour::accept_all()
                };
                let slow = |ms: u64| Behaviour::slow(Duration::from_millis(ms));
                provider.set_behaviour(match chaos {
                    Chaos::Provider500 => failing(500, 0.5, None),
                    Chaos::Provider429 => failing(429, 0.3, Some(1)),
                    // Over PROVIDER_TIMEOUT_MS: accepted, and timed out.
                    Chaos::ProviderTimesOut => slow(1500),
                    Chaos::ProviderSlow => slow(300),
                    _ => Behaviour::accept_all(),
                });
                enqueued += produce(&db, rate, step).await;
            }
        }
        let rss = rss_kib(steady.pid());
        peak_rss = peak_rss.max(rss);
        if deck.is_empty() {
            rss_by_round.push(rss);
        }
    }
    provider.set_behaviour(Behaviour::accept_all());
    let chaos_secs = started.elapsed().as_secs_f64();

    let final_counts = eventually_within(
        Duration::from_secs(180),
        "every message finished",
        || async {
            let counts = crate::helpers::counted_by_status(&db).await.ok()?;
            let unfinished = counts
                .iter()
                .any(|(status, n)| (status == "pending" || status == "sending") && *n > 0);
            (!unfinished).then_some(counts)
        },
    )
    .await;
    let end_rss = rss_kib(steady.pid());
    let warm_rss = rss_by_round.first().copied().unwrap_or(first_rss);

    let rows = crate::helpers::rows(&db).await;
    let calls = provider.calls();
    let mut accepted: HashMap<i64, String> = HashMap::new();
    let mut last_call: HashMap<i64, u64> = HashMap::new();
    for call in &calls {
        let key: i64 = call.idempotency_key.as_deref().unwrap().parse().unwrap();
        if let Some(id) = &call.message_id {
            accepted.insert(key, id.clone());
        }
        let last = last_call.entry(key).or_default();
        *last = (*last).max(call.received_at_ms);
    }
    let (mut sent, mut failed, mut lost, mut after_sent) = (0u64, 0u64, 0u64, 0u64);
    for crate::helpers::Row {
        id,
        status,
        provider_message_id,
        sent_at,
        last_error,
        ..
    } in &rows
    {
        match status.as_str() {
            "sent" => {
                sent += 1;
                if accepted.get(id) != provider_message_id.as_ref() {
                    lost += 1;
                }
                // A call that left after the row was written sent: a
                // second send after acceptance (the clocks are one).
                let written = sent_at.unwrap().timestamp_millis() as u64;
                if last_call.get(id).is_some_and(|&last| last > written + 1000) {
                    after_sent += 1;
                }
            }
            "failed" => {
                failed += 1;
                assert!(
                    last_error.as_deref().is_some_and(|e| !e.is_empty()),
                    "message {id} failed without a reason"
                );
            }
            other => panic!("message {id} ended {other}"),
        }
    }
    let accepted_not_sent = accepted.len() as u64 - sent.min(accepted.len() as u64);
    eprintln!(
        "soak: {chaos_secs:.0} s of chaos at {rate}/s; {enqueued} messages enqueued, {sent} sent, {failed} failed; \
         {} provider calls, {} keys accepted; lost {lost}, accepted but not sent {accepted_not_sent}, \
         posted after sent {after_sent}; faults {faults:?}; unclean SIGTERM exits {unclean_exits}; \
         RSS of the steady instance: {first_rss} KiB after 2 s, {warm_rss} KiB after the first round, {peak_rss} KiB peak, \
         {end_rss} KiB at the end (by round: {rss_by_round:?}); final {final_counts:?}",
        calls.len(),
        accepted.len()
    );
    // An insert cut by a restart may have committed unseen: at least.
    assert!(
        rows.len() as u64 >= enqueued,
        "every stored message is there"
    );
    assert_eq!(
        lost, 0,
        "every sent row holds the id the provider accepted it under"
    );
    assert_eq!(
        accepted.len() as u64,
        sent,
        "distinct keys accepted by the provider = rows sent"
    );
    assert_eq!(after_sent, 0, "nothing posted again once sent");
    assert_eq!(unclean_exits, 0, "every SIGTERM exits 0");
    // Noise of the allocator aside, the steady instance's memory is flat.
    assert!(
        end_rss <= warm_rss * 2 + 16 * 1024,
        "RSS grew from {warm_rss} KiB to {end_rss} KiB"
    );
    drop(others);
}
