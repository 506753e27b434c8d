//! Ticks, order, the provider protocol and restarts.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use mock_provider::Behaviour;

use crate::helpers::{spawn_app, spawn_app_with, start_provider, TestOptions};

#[actix_web::test]
async fn each_tick_sends_exactly_the_batch_lowest_id_first() {
    let app = spawn_app().await;
    let ids = app.insert_messages(5).await;

    assert!(app.tick().await);
    assert_eq!(app.provider_keys(), ids[..2]);

    assert!(app.tick().await);
    assert_eq!(app.provider_keys(), ids[..4]);
    let statuses = app.statuses().await;
    let sent: Vec<i64> = statuses
        .iter()
        .filter(|(_, s)| s == "sent")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(sent, ids[..4]);
    assert_eq!(statuses[4].1, "pending");
}

#[actix_web::test]
async fn rows_inserted_between_ticks_go_out_on_the_next_tick() {
    let app = spawn_app().await;
    let first = app.insert_messages(1).await;
    app.tick().await;
    let later = app.insert_messages(2).await;

    app.tick().await;

    assert_eq!(app.provider_keys(), [first, later].concat());
}

#[actix_web::test]
async fn a_batch_size_of_three_sends_three_per_tick() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 3)).await;
    let ids = app.insert_messages(7).await;

    app.tick().await;

    assert_eq!(app.provider_keys(), ids[..3]);
}

#[actix_web::test]
async fn the_provider_receives_the_body_auth_header_and_idempotency_key() {
    let provider = Arc::new(start_provider(Some("k-123")));
    let options = TestOptions {
        provider: Some(provider.clone()),
        ..TestOptions::default()
    };
    let app = spawn_app_with(options.var("PROVIDER_AUTH_KEY", "k-123")).await;
    let ids = app.insert_messages(1).await;

    app.tick().await;

    let calls = provider.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        call.idempotency_key.as_deref(),
        Some(ids[0].to_string().as_str())
    );
    assert_eq!(call.auth_key.as_deref(), Some("k-123"));
    assert_eq!(call.to, "+905550000000");
    assert_eq!(call.content, "message 0");
    assert_eq!(call.status, 202);
    let row = crate::helpers::first_row(&app.db).await;
    let status = row.status;
    let sent = row.sent;
    let attempts = row.attempts;
    let provider_message_id = row.provider_message_id;
    let has_sent_at = row.sent_at.is_some();
    assert_eq!(
        (status.as_str(), sent, attempts, has_sent_at),
        ("sent", true, 1, true)
    );
    assert_eq!(provider_message_id, call.message_id);
}

#[actix_web::test]
async fn a_wrong_auth_key_fails_the_message_at_once() {
    let provider = Arc::new(start_provider(Some("right")));
    let options = TestOptions {
        provider: Some(provider.clone()),
        ..TestOptions::default()
    };
    let app = spawn_app_with(options.var("PROVIDER_AUTH_KEY", "wrong")).await;
    app.insert_messages(1).await;

    app.tick().await;
    app.tick().await;

    assert_eq!(
        provider.calls().len(),
        1,
        "a refused message is never sent again"
    );
    let row = crate::helpers::first_row(&app.db).await;
    let status = row.status;
    let last_error = row.last_error;
    assert_eq!(status, "failed");
    assert!(last_error.unwrap_or_default().contains("401"));
}

#[actix_web::test]
async fn a_server_error_puts_the_message_back_with_a_backoff() {
    let app = spawn_app_with(TestOptions::default().var("RETRY_BASE_MS", 60_000)).await;
    app.provider
        .set_behaviour(Behaviour::failing(StatusCode::SERVICE_UNAVAILABLE));
    app.insert_messages(1).await;

    app.tick().await;
    app.tick().await;

    assert_eq!(
        app.provider.calls().len(),
        1,
        "not due again before its backoff"
    );
    let row = crate::helpers::first_row(&app.db).await;
    let status = row.status;
    let attempts = row.attempts;
    let last_error = row.last_error;
    let wait_secs = row.due_in;
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert!(last_error.unwrap_or_default().contains("503"));
    assert!(
        (50.0..=60.0).contains(&wait_secs),
        "due again in {wait_secs} s"
    );
}

#[actix_web::test]
async fn the_first_tick_fires_at_start() {
    let stopped = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let ids = stopped.insert_messages(3).await;
    let (database_url, provider) = (stopped.database_url.clone(), stopped.provider.clone());
    stopped.shut_down().await.unwrap();
    assert!(provider.calls().is_empty());

    let app = spawn_app_with(TestOptions {
        database_url: Some(database_url),
        provider: Some(provider),
        ..TestOptions::default()
    })
    .await;
    app.pipeline.wait_idle().await;

    assert_eq!(app.provider_keys(), ids[..2]);
}

#[actix_web::test]
async fn a_restart_never_resends_a_sent_message() {
    let first = spawn_app().await;
    let ids = first.insert_messages(3).await;
    first.tick().await;
    let (database_url, provider) = (first.database_url.clone(), first.provider.clone());
    first.shut_down().await.unwrap();

    let second = spawn_app_with(TestOptions {
        database_url: Some(database_url),
        provider: Some(provider.clone()),
        ..TestOptions::default()
    })
    .await;
    second.pipeline.wait_idle().await;
    second.tick().await;

    assert_eq!(second.provider_keys(), ids, "each message exactly once");
    let stats = provider.stats();
    assert_eq!((stats.calls, stats.distinct_keys), (3, 3));
}

#[actix_web::test]
async fn an_unreachable_provider_is_a_transient_failure() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/send", unused.local_addr().unwrap());
    drop(unused);
    let app = spawn_app_with(
        TestOptions::default()
            .var("PROVIDER_URL", url)
            .var("PROVIDER_TIMEOUT_MS", 1000),
    )
    .await;
    app.insert_messages(1).await;

    tokio::time::timeout(Duration::from_secs(20), app.tick())
        .await
        .expect("the tick ends");

    let row = crate::helpers::first_row(&app.db).await;
    let status = row.status;
    let last_error = row.last_error;
    assert_eq!(status, "pending");
    assert!(last_error.unwrap_or_default().contains("connect"));
}
