//! Several providers (SPEC Part 2): routing by prefix, failover only after
//! an answer that proves the message was not taken, a breaker per provider,
//! a rate per provider kept by the fleet. Real processes, real mocks.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use mock_provider::{Behaviour, MockProvider};
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{base_vars, count, create_database, eventually_within};
use crate::helpers::{start_provider, Api};
use crate::process::{free_port, ServiceProcess};

/// A `[[provider]]` of a providers file.
struct Entry<'a> {
    name: &'a str,
    url: String,
    /// More lines of TOML.
    extra: &'a str,
}

fn entry<'a>(name: &'a str, url: String, extra: &'a str) -> Entry<'a> {
    Entry { name, url, extra }
}

/// The variables of a service process on `database_url` with these
/// providers (the file written to a temporary path), ticking every 100 ms,
/// with `extra` on top.
fn provider_vars(
    providers: &[Entry<'_>],
    database_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let toml: String = providers
        .iter()
        .map(|p| {
            format!(
                "[[provider]]\nname = \"{}\"\nurl = \"{}\"\n{}\n\n",
                p.name, p.url, p.extra
            )
        })
        .collect();
    let path = std::env::temp_dir().join(format!("providers-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, toml).unwrap();
    let unused = start_provider(None);
    let mut vars = base_vars(database_url, &unused);
    vars.retain(|(name, _)| name != "PROVIDER_URL");
    vars.push(("PROVIDERS_FILE".into(), path.display().to_string()));
    for (name, value) in [
        ("DISPATCH_INTERVAL_MS", "100"),
        ("DISPATCH_BATCH_SIZE", "20"),
    ]
    .iter()
    .chain(extra)
    {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_string(), value.to_string()));
    }
    vars
}

/// A service process on a fresh database (see [`provider_vars`]), a pool
/// on that database, and its URL.
async fn service_with(
    providers: &[Entry<'_>],
    extra: &[(&str, &str)],
) -> (ServiceProcess, PgPool, String) {
    let database_url = create_database().await;
    let service = ServiceProcess::start(&provider_vars(providers, &database_url, extra)).await;
    let db = PgPool::connect(&database_url).await.unwrap();
    (service, db, database_url)
}

/// Stores `n` messages to numbers that start with `prefix`.
async fn insert_to(db: &PgPool, prefix: &str, n: usize) -> Vec<i64> {
    sqlx::query_scalar(
        "INSERT INTO messages (phone_number, content) \
         SELECT $1 || lpad(i::text, 7, '0'), 'message ' || i FROM generate_series(1, $2) AS i \
         RETURNING id",
    )
    .bind(prefix)
    .bind(n as i32)
    .fetch_all(db)
    .await
    .unwrap()
}

/// Waits until no message is pending or sending.
async fn all_finished(db: &PgPool, within: Duration) {
    eventually_within(within, "every message finished", || async {
        let open = count(db, "pending").await + count(db, "sending").await;
        (open == 0).then_some(())
    })
    .await;
}

/// `(id, status, provider, provider_message_id, last_error)` of every row.
async fn rows(db: &PgPool) -> Vec<(i64, String, Option<String>, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT id, status, provider, provider_message_id, last_error FROM messages ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// The keys a mock accepted, each with the id it answered.
fn accepted(mock: &MockProvider) -> BTreeMap<String, String> {
    mock.calls()
        .into_iter()
        .filter_map(|call| Some((call.idempotency_key?, call.message_id?)))
        .collect()
}

/// The `attempt_history` of message `id`.
async fn history(service: &ServiceProcess, id: i64) -> Vec<Value> {
    let (status, message) = service.message(id).await;
    assert_eq!(status, 200);
    message["attempt_history"]
        .as_array()
        .expect("a history")
        .clone()
}

/// The breaker of provider `name` in status.
fn breaker(status: &Value, name: &str) -> String {
    status["providers"]
        .as_array()
        .expect("providers in status")
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["breaker"].as_str().unwrap().to_owned())
        .expect("the provider in status")
}

#[actix_web::test]
async fn with_the_primary_down_from_the_start_everything_goes_to_the_secondary() {
    let secondary = start_provider(None);
    let closed = format!("http://127.0.0.1:{}/send", free_port());
    let (service, db, _) = service_with(
        &[
            entry("primary", closed, ""),
            entry("secondary", secondary.send_url(), ""),
        ],
        &[],
    )
    .await;
    insert_to(&db, "+90555", 40).await;

    all_finished(&db, Duration::from_secs(30)).await;

    let rows = rows(&db).await;
    assert!(
        rows.iter().all(|r| r.1 == "sent"),
        "none to nowhere: {rows:?}"
    );
    assert!(rows.iter().all(|r| r.2.as_deref() == Some("secondary")));
    let keys = accepted(&secondary);
    assert_eq!(keys.len(), 40);
    assert_eq!(secondary.stats().calls, 40, "each message once");
    for row in &rows {
        let history = history(&service, row.0).await;
        let (last, earlier) = history.split_last().expect("a call");
        assert_eq!(
            (
                last["provider"].as_str(),
                last["result"].as_str(),
                last["http_status"].as_u64()
            ),
            (Some("secondary"), Some("accepted"), Some(202))
        );
        for call in earlier {
            assert_eq!(call["provider"], "primary");
            assert_eq!(call["result"], "not_accepted");
            assert_eq!(call["http_status"], Value::Null);
            assert!(call["error"]
                .as_str()
                .unwrap()
                .contains("could not connect"));
        }
    }
    let (_, status) = service.status().await;
    assert_eq!(breaker(&status, "primary"), "open");
    assert_eq!(breaker(&status, "secondary"), "closed");
    let metrics = service.get_text("/metrics").await;
    for line in [
        r#"dispatcher_provider_breaker_state{provider="primary"} 2"#,
        r#"dispatcher_provider_breaker_state{provider="secondary"} 0"#,
        r#"dispatcher_provider_breaker_transitions_total{provider="primary",state="open"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    assert_eq!(
        service.log_count("provider breaker opened"),
        1,
        "logged once"
    );
}

#[actix_web::test]
async fn a_primary_answering_503_fails_over_and_gets_its_traffic_back_after_the_probe() {
    let (primary, secondary) = (start_provider(None), start_provider(None));
    primary.set_behaviour(Behaviour::failing(StatusCode::SERVICE_UNAVAILABLE));
    let breaker_lines = "breaker_failures = 3\nbreaker_cooldown_ms = 500";
    let (service, db, _) = service_with(
        &[
            entry("primary", primary.send_url(), breaker_lines),
            entry("secondary", secondary.send_url(), ""),
        ],
        &[],
    )
    .await;
    insert_to(&db, "+90555", 20).await;
    all_finished(&db, Duration::from_secs(30)).await;
    assert!(rows(&db)
        .await
        .iter()
        .all(|r| r.2.as_deref() == Some("secondary")));
    assert_eq!(breaker(&service.status().await.1, "primary"), "open");

    primary.set_behaviour(Behaviour::accept_all());
    // Messages keep coming; once the cool-down is over, the probe reaches
    // the primary and traffic goes back to it.
    eventually_within(
        Duration::from_secs(30),
        "a message sent by the primary",
        || async {
            if count(&db, "pending").await == 0 {
                insert_to(&db, "+90555", 1).await;
            }
            (!accepted(&primary).is_empty()).then_some(())
        },
    )
    .await;
    let later = insert_to(&db, "+90555", 10).await;
    all_finished(&db, Duration::from_secs(30)).await;

    let rows = rows(&db).await;
    assert!(rows.iter().all(|r| r.1 == "sent"), "{rows:?}");
    for row in rows.iter().filter(|r| later.contains(&r.0)) {
        assert_eq!(
            row.2.as_deref(),
            Some("primary"),
            "after the probe: {row:?}"
        );
    }
    let (on_primary, on_secondary) = (accepted(&primary), accepted(&secondary));
    assert_eq!(on_primary.len() + on_secondary.len(), rows.len());
    assert!(
        on_primary.keys().all(|key| !on_secondary.contains_key(key)),
        "no duplicate"
    );
    assert_eq!(breaker(&service.status().await.1, "primary"), "closed");
    assert_eq!(service.log_count("provider breaker closed"), 1);
}

#[actix_web::test]
async fn a_primary_that_times_out_keeps_its_messages_and_none_goes_to_the_secondary() {
    let (primary, secondary) = (Arc::new(start_provider(None)), start_provider(None));
    // Its breaker opens after five time-outs: pinned messages then wait for
    // the probe, they do not move either.
    primary.set_behaviour(Behaviour::slow(Duration::from_secs(3)));
    let (service, db, _) = service_with(
        &[
            entry(
                "primary",
                primary.send_url(),
                "timeout_ms = 300\nbreaker_cooldown_ms = 500",
            ),
            entry("secondary", secondary.send_url(), ""),
        ],
        &[("MAX_ATTEMPTS", "20"), ("RETRY_BASE_MS", "100")],
    )
    .await;
    let ids = insert_to(&db, "+90555", 5).await;

    eventually_within(
        Duration::from_secs(30),
        "every message tried twice",
        || async {
            let calls = primary.calls();
            let keys: HashSet<_> = calls
                .iter()
                .filter_map(|c| c.idempotency_key.clone())
                .collect();
            (keys.len() == 5 && calls.len() >= 10).then_some(())
        },
    )
    .await;
    let pinned = rows(&db).await;
    assert!(
        pinned.iter().all(|r| r.2.as_deref() == Some("primary")),
        "{pinned:?}"
    );
    primary.set_behaviour(Behaviour::accept_all());
    all_finished(&db, Duration::from_secs(60)).await;

    assert_eq!(
        secondary.stats().calls,
        0,
        "uncertain: never sent elsewhere"
    );
    let rows = rows(&db).await;
    assert!(rows
        .iter()
        .all(|r| r.1 == "sent" && r.2.as_deref() == Some("primary")));
    let keys = accepted(&primary);
    assert_eq!(keys.len(), ids.len(), "distinct keys = rows");
    for row in &rows {
        let key = row.0.to_string();
        assert_eq!(
            row.3.as_ref(),
            keys.get(&key),
            "the id of the first call's key"
        );
        let history = history(&service, row.0).await;
        let (last, earlier) = history.split_last().expect("a call");
        assert!(!earlier.is_empty(), "{history:?}");
        assert_eq!(
            (last["result"].as_str(), last["http_status"].as_u64()),
            (Some("accepted"), Some(202))
        );
        for call in earlier {
            assert_eq!(
                (call["provider"].as_str(), call["result"].as_str()),
                (Some("primary"), Some("uncertain"))
            );
            assert_eq!(call["error"], "provider did not answer in time");
        }
    }
}

#[actix_web::test]
async fn numbers_go_to_the_providers_of_their_prefix_and_a_number_none_serves_fails() {
    let (turkey, uk) = (start_provider(Some("tr-secret")), start_provider(None));
    let (service, db, _) = service_with(
        &[
            entry(
                "turkey",
                turkey.send_url(),
                "prefixes = [\"+90\"]\nauth_key_env = \"TURKEY_KEY\"",
            ),
            entry("uk", uk.send_url(), "prefixes = [\"+44\"]"),
        ],
        &[("TURKEY_KEY", "tr-secret")],
    )
    .await;
    let to_turkey = insert_to(&db, "+90555", 3).await;
    let to_uk = insert_to(&db, "+44770", 2).await;
    let nowhere = insert_to(&db, "+1555", 1).await;

    all_finished(&db, Duration::from_secs(30)).await;

    let rows = rows(&db).await;
    for row in &rows {
        let expected = if to_turkey.contains(&row.0) {
            Some("turkey")
        } else if to_uk.contains(&row.0) {
            Some("uk")
        } else {
            None
        };
        assert_eq!(row.2.as_deref(), expected, "{row:?}");
    }
    assert_eq!((turkey.stats().calls, uk.stats().calls), (3, 2));
    let unserved = rows.iter().find(|r| r.0 == nowhere[0]).unwrap();
    assert_eq!(unserved.1, "failed");
    assert_eq!(
        unserved.4.as_deref(),
        Some("no provider serves +15550000001")
    );
    assert!(history(&service, unserved.0).await.is_empty(), "no call");
    assert_eq!(count(&db, "sent").await, 5);
}

#[actix_web::test]
async fn two_providers_at_20_a_second_and_three_instances_never_get_more_in_a_second() {
    let (a, b) = (start_provider(None), start_provider(None));
    let entries = [
        entry(
            "a",
            a.send_url(),
            "prefixes = [\"+90\"]\nmax_per_second = 20",
        ),
        entry(
            "b",
            b.send_url(),
            "prefixes = [\"+44\"]\nmax_per_second = 20",
        ),
    ];
    let rate = [("DISPATCH_BATCH_SIZE", "50"), ("DISPATCH_SCOPE", "cluster")];
    let (first, db, database_url) = service_with(&entries, &rate).await;
    insert_to(&db, "+90555", 100).await;
    insert_to(&db, "+44770", 100).await;
    let mut fleet = vec![first];
    for _ in 0..2 {
        let vars = provider_vars(&entries, &database_url, &rate);
        fleet.push(ServiceProcess::start(&vars).await);
    }

    all_finished(&db, Duration::from_secs(60)).await;

    assert_eq!(count(&db, "sent").await, 200);
    for (name, mock) in [("a", &a), ("b", &b)] {
        let calls = mock.calls();
        let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
        for call in &calls {
            *per_second.entry(call.received_at_ms / 1000).or_default() += 1;
        }
        let worst = per_second.values().max().copied().unwrap_or(0);
        println!(
            "provider {name}: worst second {worst} calls, {} calls in all",
            calls.len()
        );
        assert!(worst <= 21, "provider {name}: {per_second:?}");
        assert_eq!(accepted(mock).len(), 100, "each message once at {name}");
        assert_eq!(calls.len(), 100, "no call twice at {name}");
    }
    drop(fleet);
}
