//! Every kind of bad answer from the provider, and recovery.

use std::time::Duration;

use actix_web::http::StatusCode;
use mock_provider::Behaviour;

use crate::helpers::{spawn_app, spawn_app_with, Api, TestApp, TestOptions};

fn failing(status: StatusCode) -> Behaviour {
    Behaviour::failing(status)
}

fn canned(status: StatusCode, body: String) -> Behaviour {
    Behaviour {
        canned: Some((status, body)),
        ..Behaviour::accept_all()
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    status: String,
    attempts: i32,
    last_error: Option<String>,
    /// Seconds until it is due again.
    wait: f64,
}

async fn row(app: &TestApp, id: i64) -> Row {
    let row = app.row(id).await;
    Row {
        status: row.status,
        attempts: row.attempts,
        last_error: row.last_error,
        wait: row.due_in,
    }
}

/// Makes every pending row due now, as if its backoff had passed.
async fn let_backoff_pass(app: &TestApp) {
    sqlx::query("UPDATE messages SET due_at = now() WHERE status = 'pending'")
        .execute(&app.db)
        .await
        .unwrap();
}

#[actix_web::test]
async fn server_errors_and_429s_back_off_more_each_time_then_the_message_is_sent() {
    let app = spawn_app_with(TestOptions::default().var("RETRY_BASE_MS", 10_000)).await;
    let id = app.insert_messages(1).await[0];

    let mut waits = Vec::new();
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::BAD_GATEWAY,
    ] {
        app.provider.set_behaviour(failing(status));
        app.tick().await;
        let row = row(&app, id).await;
        assert_eq!(row.status, "pending");
        assert!(
            row.last_error
                .as_deref()
                .unwrap_or_default()
                .contains(status.as_str()),
            "{row:?}"
        );
        waits.push(row.wait);
        let_backoff_pass(&app).await;
    }
    app.provider.set_behaviour(Behaviour::accept_all());
    app.tick().await;

    for (wait, expected) in waits.iter().zip([10.0, 20.0, 40.0]) {
        assert!(
            (expected - 2.0..=expected).contains(wait),
            "waits {waits:?}"
        );
    }
    let row = row(&app, id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 4));
    assert_eq!(app.provider.stats().accepted, 1);
}

#[actix_web::test]
async fn after_max_attempts_a_message_fails_with_its_last_error() {
    let app = spawn_app_with(TestOptions::default().var("MAX_ATTEMPTS", 3)).await;
    app.provider
        .set_behaviour(failing(StatusCode::SERVICE_UNAVAILABLE));
    let id = app.insert_messages(1).await[0];

    for _ in 0..4 {
        app.tick().await;
        let_backoff_pass(&app).await;
    }

    let row = row(&app, id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 3));
    let last_error = row.last_error.unwrap();
    assert!(
        last_error.contains("gave up after 3 attempts") && last_error.contains("503"),
        "{last_error}"
    );
    assert_eq!(app.provider.calls().len(), 3);
}

#[actix_web::test]
async fn a_400_fails_the_message_at_once() {
    let app = spawn_app().await;
    app.provider.set_behaviour(failing(StatusCode::BAD_REQUEST));
    let id = app.insert_messages(1).await[0];

    app.tick().await;

    let row = row(&app, id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 1));
    assert!(row.last_error.unwrap().contains("400"));
}

#[actix_web::test]
async fn a_time_out_is_retried_later_with_a_clear_error() {
    let app = spawn_app_with(TestOptions::default().var("PROVIDER_TIMEOUT_MS", 300)).await;
    app.provider
        .set_behaviour(Behaviour::slow(Duration::from_secs(3)));
    let id = app.insert_messages(1).await[0];

    app.tick().await;

    let row = row(&app, id).await;
    assert_eq!(row.status, "pending");
    assert_eq!(
        row.last_error.as_deref(),
        Some("provider did not answer in time")
    );
}

#[actix_web::test]
async fn accepted_answers_without_a_usable_message_id_fail_with_a_clear_error() {
    let app = spawn_app().await;
    let answers = [
        (
            StatusCode::ACCEPTED,
            "Accepted".to_owned(),
            "without a messageId",
        ),
        (
            StatusCode::ACCEPTED,
            r#"{"message":"Accepted"}"#.to_owned(),
            "without a messageId",
        ),
        (
            StatusCode::OK,
            r#"{"messageId":""}"#.to_owned(),
            "empty messageId",
        ),
        (
            StatusCode::ACCEPTED,
            format!(r#"{{"messageId":"{}"}}"#, "x".repeat(200_000)),
            "over 65536 bytes",
        ),
    ];
    for (status, body, expected) in answers {
        app.provider.set_behaviour(canned(status, body));
        let id = app.insert_messages(1).await[0];

        app.tick().await;

        let row = row(&app, id).await;
        assert_eq!(row.status, "failed", "{expected}");
        let last_error = row.last_error.unwrap();
        assert!(last_error.contains(expected), "{last_error}");
        assert!(
            last_error.chars().count() < 400,
            "the error is short: {last_error}"
        );
    }
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200, "the service goes on");
}

#[actix_web::test]
async fn a_retried_message_keeps_its_fifo_place_once_due_again() {
    let app = spawn_app().await;
    app.provider
        .set_behaviour(failing(StatusCode::INTERNAL_SERVER_ERROR));
    let first = app.insert_messages(1).await[0];
    app.tick().await;
    app.provider.set_behaviour(Behaviour::accept_all());
    let newer = app.insert_messages(4).await;

    let_backoff_pass(&app).await;
    app.tick().await;

    let mut keys = app.provider_keys();
    keys.dedup();
    assert_eq!(
        keys,
        [first, newer[0]],
        "the retried message goes before newer ones"
    );
}
