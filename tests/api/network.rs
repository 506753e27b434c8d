//! Faults of the network between the service and the provider, PostgreSQL
//! and Redis, injected by [`FaultProxy`]: no hang longer than the time-outs,
//! nothing lost, nothing accepted twice, and the pipeline resumes by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use message_dispatcher::repository::STATEMENT_TIMEOUT;
use sqlx::PgPool;

use crate::helpers::{count, service_vars, slow_provider, Api};
use crate::helpers::{
    create_database, eventually, eventually_within, insert_messages, redis_url, spawn_app_with,
    start_provider, TestApp, TestOptions,
};
use crate::process::ServiceProcess;
use crate::proxy::{Fault, FaultProxy};

/// The in-process service, calling the provider through a proxy.
async fn app_behind_a_provider_proxy(timeout_ms: u64) -> (TestApp, FaultProxy) {
    let provider = Arc::new(start_provider(None));
    let (proxy, url) = FaultProxy::in_front_of(&provider.send_url());
    let app = spawn_app_with(
        TestOptions {
            provider: Some(provider),
            ..Default::default()
        }
        .var("PROVIDER_URL", url)
        .var("PROVIDER_TIMEOUT_MS", timeout_ms)
        .var("DISPATCH_BATCH_SIZE", 10),
    )
    .await;
    (app, proxy)
}

async fn row(db: &PgPool, id: i64) -> (String, Option<String>, Option<String>) {
    let row = crate::helpers::row(db, id).await;
    (row.status, row.last_error, row.provider_message_id)
}

/// Makes every retried row due now, so that the next tick takes it.
async fn due_now(db: &PgPool) {
    sqlx::query("UPDATE messages SET due_at = now() WHERE status = 'pending'")
        .execute(db)
        .await
        .unwrap();
}

/// Ticks once and returns how long the tick and its calls took.
async fn timed_tick(app: &TestApp) -> Duration {
    let started = Instant::now();
    assert!(app.tick().await);
    started.elapsed()
}

#[actix_web::test]
async fn a_provider_link_that_accepts_and_never_answers_costs_one_time_out_then_the_message_is_sent(
) {
    let (app, proxy) = app_behind_a_provider_proxy(1000).await;
    let id = app.insert_messages(1).await[0];
    proxy.set(Fault::Silence);

    let took = timed_tick(&app).await;

    let (status, error, _) = row(&app.db, id).await;
    assert_eq!(status, "pending");
    assert_eq!(error.as_deref(), Some("provider did not answer in time"));
    assert!(took < Duration::from_millis(1000 + 2000), "{took:?}");
    assert_eq!(
        app.provider.stats().calls,
        0,
        "nothing reached the provider"
    );

    proxy.set(Fault::None);
    due_now(&app.db).await;
    app.tick().await;
    assert_eq!(row(&app.db, id).await.0, "sent");
    assert_eq!(app.provider.stats().distinct_keys, 1);
}

#[actix_web::test]
async fn an_answer_reset_midway_is_retried_with_the_same_key_and_the_row_keeps_the_first_id() {
    let (app, proxy) = app_behind_a_provider_proxy(2000).await;
    app.insert_messages(1).await;
    app.tick().await;
    // Every answer of the mock has the same length.
    let answer = proxy.bytes_down();
    assert!(answer > 100, "{answer}");

    // Cut in the status line and headers, then in the JSON body.
    for depth in [20, answer - 10] {
        let id = app.insert_messages(1).await[0];
        proxy.set(Fault::ResetAfter(depth));
        app.tick().await;
        let (status, error, _) = row(&app.db, id).await;
        assert_eq!(status, "pending", "reset after {depth} bytes: {error:?}");
        assert!(error.is_some_and(|e| !e.is_empty()));

        proxy.set(Fault::None);
        due_now(&app.db).await;
        app.tick().await;
        let (status, _, provider_message_id) = row(&app.db, id).await;
        assert_eq!(status, "sent");
        let calls: Vec<_> = app
            .provider
            .calls()
            .into_iter()
            .filter(|c| c.idempotency_key == Some(id.to_string()))
            .collect();
        assert_eq!(calls.len(), 2, "posted again after the reset");
        assert!(
            calls
                .iter()
                .all(|c| c.message_id == provider_message_id && c.status == 202),
            "the provider accepted it once under its key: {calls:?}"
        );
    }
    assert_eq!(app.provider.stats().distinct_keys, 3);
}

#[actix_web::test]
async fn an_answer_trickled_one_byte_a_second_is_cut_at_the_time_out() {
    let (app, proxy) = app_behind_a_provider_proxy(1500).await;
    let id = app.insert_messages(1).await[0];
    proxy.set(Fault::Trickle(Duration::from_secs(1)));

    let took = timed_tick(&app).await;

    let (status, error, _) = row(&app.db, id).await;
    assert_eq!(status, "pending");
    assert_eq!(error.as_deref(), Some("provider did not answer in time"));
    assert!(took < Duration::from_millis(1500 + 2000), "{took:?}");
    assert!(proxy.bytes_down() < 10, "a few bytes got through, no more");

    proxy.set(Fault::None);
    due_now(&app.db).await;
    app.tick().await;
    assert_eq!(row(&app.db, id).await.0, "sent");
    assert_eq!(app.provider.stats().distinct_keys, 1);
}

/// The in-process service on a fresh database reached through a proxy; the
/// test's own pool goes straight to it. No Redis: without a database of its
/// own, the ids would collide with other tests' cache entries.
async fn app_behind_a_database_proxy(extra: &[(&'static str, &str)]) -> (TestApp, FaultProxy) {
    let database_url = create_database().await;
    let (proxy, proxied) = FaultProxy::in_front_of(&database_url);
    let mut options = TestOptions {
        database_url: Some(database_url),
        ..Default::default()
    }
    .var("DATABASE_URL", proxied)
    .var("REDIS_URL", "");
    for (name, value) in extra {
        options = options.var(name, value);
    }
    (spawn_app_with(options).await, proxy)
}

#[actix_web::test]
async fn a_slow_link_to_postgresql_sends_everything_once() {
    let (app, proxy) = app_behind_a_database_proxy(&[("DISPATCH_BATCH_SIZE", "5")]).await;
    let ids = app.insert_messages(10).await;
    proxy.set(Fault::Latency(Duration::from_millis(30)));

    app.tick().await;
    app.tick().await;

    assert_eq!(count(&app.db, "sent").await, 10);
    assert_eq!(app.provider_keys(), ids, "each once");
}

#[actix_web::test]
async fn a_silent_link_to_postgresql_never_hangs_ticks_readiness_or_stop_and_sending_resumes() {
    let (app, proxy) =
        app_behind_a_database_proxy(&[("DISPATCH_BATCH_SIZE", "5"), ("LEASE_MS", "1000")]).await;
    let ids = app.insert_messages(3).await;
    proxy.set(Fault::Silence);
    let bound = STATEMENT_TIMEOUT + Duration::from_secs(3);

    let started = Instant::now();
    app.pipeline.tick().await;
    let tick = started.elapsed();
    let started = Instant::now();
    let (status, ready) = app.get("/readyz").await;
    let readiness = started.elapsed();
    let started = Instant::now();
    let (stop, _) = app.stop().await;
    let stopping = started.elapsed();

    assert!(tick < bound, "a tick took {tick:?}");
    assert_eq!((status, ready["postgres"].as_str()), (503, Some("down")));
    assert!(readiness < Duration::from_secs(4), "{readiness:?}");
    assert_eq!(stop, 200, "instance scope: stop needs no database");
    assert!(stopping < bound, "stop took {stopping:?}");
    assert_eq!(app.provider.stats().calls, 0);

    proxy.set(Fault::None);
    let (start, _) = app.start().await;
    assert_eq!(start, 200);
    eventually_within(bound * 2, "every message sent", || async {
        app.tick().await;
        (count(&app.db, "sent").await == 3).then_some(())
    })
    .await;
    assert_eq!(app.provider_keys(), ids, "each once, nothing lost");
}

#[actix_web::test]
async fn a_silent_link_to_redis_never_pauses_sending_and_the_cache_fills_again() {
    let (proxy, url) = FaultProxy::in_front_of(&redis_url());
    let app = spawn_app_with(TestOptions::default().var("REDIS_URL", url)).await;
    let cached = |id: i64| {
        let address = app.address.clone();
        let client = app.api.clone();
        async move {
            let mut response = client
                .get(format!("{address}/api/messages/{id}"))
                .send()
                .await
                .ok()?;
            let body: serde_json::Value = response.json().await.ok()?;
            (body["delivery_source"] == "cache").then_some(())
        }
    };
    let before = app.insert_messages(2).await;
    app.tick().await;
    eventually("the delivery in Redis", || cached(before[1])).await;

    proxy.set(Fault::Silence);
    let during = app.insert_messages(2).await;
    let took = timed_tick(&app).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(count(&app.db, "sent").await, 4);
    let started = Instant::now();
    assert_eq!(
        app.cache_view(during[0]).await,
        ("down".to_owned(), "database".to_owned())
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    proxy.set(Fault::None);
    let after = app.insert_messages(2).await;
    app.tick().await;
    eventually("the cache to fill again", || cached(after[1])).await;
    assert_eq!(app.provider.stats().distinct_keys, 6);
}

#[actix_web::test]
async fn sigterm_with_a_silent_postgresql_exits_0_within_its_bound_and_nothing_is_lost() {
    let provider = slow_provider(1000);
    let database_url = create_database().await;
    let (proxy, proxied) = FaultProxy::in_front_of(&database_url);
    let lease = [("LEASE_MS", "1000"), ("DISPATCH_SCOPE", "instance")];
    let mut service = ServiceProcess::start(&service_vars(
        &proxied,
        &provider,
        &[lease.as_slice(), &[("DISPATCH_AUTOSTART", "false")]].concat(),
    ))
    .await;
    let db = PgPool::connect(&database_url).await.unwrap();
    let id = insert_messages(&db, 1).await[0];
    assert_eq!(service.start().await.0, 200);
    eventually("the call in flight", || async {
        (provider.calls().len() == 1).then_some(())
    })
    .await;
    proxy.set(Fault::Silence);

    // The call, then one outcome write bounded by the statement time-out,
    // given up as the lease has run out by then.
    let bound = Duration::from_secs(1) + STATEMENT_TIMEOUT + Duration::from_secs(3);
    let status = service.terminate_within(bound).await;

    assert_eq!(status.code(), Some(0));
    assert_eq!(
        count(&db, "sending").await,
        1,
        "the outcome could not be written"
    );

    proxy.set(Fault::None);
    let _next = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[lease.as_slice(), &[("DISPATCH_INTERVAL_MS", "100")]].concat(),
    ))
    .await;
    eventually("the row taken over and sent", || async {
        (count(&db, "sent").await == 1).then_some(())
    })
    .await;
    let keys: Vec<_> = provider
        .calls()
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(keys, [Some(id.to_string()), Some(id.to_string())]);
    assert_eq!(provider.stats().distinct_keys, 1);
}
