//! Priority lanes, scheduled sends and expiry (SPEC Part 2).

use std::time::Duration;

use actix_web::http::StatusCode;
use chrono::Utc;
use mock_provider::Behaviour;
use serde_json::{json, Value};

use crate::helpers::{eventually, eventually_within, spawn_app_with, Api, TestApp, TestOptions};

/// Posts a message with `extra` fields; returns its id.
async fn enqueue(app: &TestApp, content: &str, extra: Value) -> i64 {
    let mut body = json!({ "phone_number": "+905551234567", "content": content });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, stored) = app.post("/api/messages", &body).await;
    assert_eq!(status, 201, "{stored}");
    stored["id"].as_i64().unwrap()
}

/// The contents the mock received, sorted (the calls of a tick run at
/// once, in no set order).
fn sent_contents(app: &TestApp) -> Vec<String> {
    let mut contents: Vec<String> = app
        .provider
        .calls()
        .into_iter()
        .map(|c| c.content)
        .collect();
    contents.sort_unstable();
    contents
}

#[actix_web::test]
async fn passcodes_at_priority_9_go_out_on_the_next_tick_ahead_of_a_campaign() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 10)).await;
    sqlx::query(
        "INSERT INTO messages (phone_number, content) \
         SELECT '+905551234567', 'campaign ' || i FROM generate_series(1, 1000) AS i",
    )
    .execute(&app.db)
    .await
    .unwrap();
    for n in 1..=5 {
        enqueue(&app, &format!("passcode {n}"), json!({ "priority": 9 })).await;
    }

    app.tick().await;

    // The ten sent at once: the passcodes, then the campaign's oldest.
    assert_eq!(
        sent_contents(&app),
        [
            "campaign 1",
            "campaign 2",
            "campaign 3",
            "campaign 4",
            "campaign 5",
            "passcode 1",
            "passcode 2",
            "passcode 3",
            "passcode 4",
            "passcode 5"
        ]
    );
}

#[actix_web::test]
async fn a_priority_0_message_older_than_the_bound_is_taken_ahead_of_new_priority_9_ones() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 1)).await;
    let old: i64 = sqlx::query_scalar(
        "INSERT INTO messages (phone_number, content, created_at) \
         VALUES ('+905551234567', 'waited an hour', now() - interval '1 hour') RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    for n in 1..=3 {
        enqueue(&app, &format!("urgent {n}"), json!({ "priority": 9 })).await;
    }
    eventually("the old message promoted", || async {
        let promoted: bool = sqlx::query_scalar("SELECT promoted FROM messages WHERE id = $1")
            .bind(old)
            .fetch_one(&app.db)
            .await
            .unwrap();
        promoted.then_some(())
    })
    .await;

    app.tick().await;

    assert_eq!(sent_contents(&app), ["waited an hour"]);
    let (_, message) = app.message(old).await;
    assert_eq!(message["priority"], 0, "its own priority is kept");
}

#[actix_web::test]
async fn with_every_row_at_priority_0_nothing_is_promoted_and_the_order_is_by_id() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 3)).await;
    sqlx::query(
        "INSERT INTO messages (phone_number, content, created_at) \
         SELECT '+905551234567', 'old ' || i, now() - interval '1 hour' FROM generate_series(1, 6) AS i",
    )
    .execute(&app.db)
    .await
    .unwrap();
    // A keeper round (promotion, then expiry) has run once this row is
    // seen expired.
    let marker = enqueue(&app, "marker", json!({ "ttl_seconds": 1 })).await;
    eventually("a keeper round", || async {
        (app.row(marker).await.status == "failed").then_some(())
    })
    .await;

    app.tick().await;

    assert_eq!(sent_contents(&app), ["old 1", "old 2", "old 3"]);
    let promoted: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE promoted")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(promoted, 0);
}

#[actix_web::test]
async fn a_message_with_a_future_send_at_is_not_claimed_before_it() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 10)).await;
    // Far enough ahead that a loaded machine still ticks before it.
    let send_at = Utc::now() + chrono::Duration::seconds(4);
    let id = enqueue(&app, "later", json!({ "send_at": send_at })).await;

    app.tick().await;
    assert!(app.provider.calls().is_empty(), "not before send_at");
    assert_eq!(app.row(id).await.status, "pending");
    assert_eq!(app.status().await.1["scheduled"], 1);

    eventually_within(
        Duration::from_secs(30),
        "the message sent once its time came",
        || async {
            app.tick().await;
            (app.row(id).await.status == "sent").then_some(())
        },
    )
    .await;
    let call = &app.provider.calls()[0];
    assert!(call.received_at_ms >= send_at.timestamp_millis() as u64);
}

#[actix_web::test]
async fn a_message_expired_before_its_turn_is_never_posted_and_ends_failed() {
    let app = spawn_app_with(TestOptions::default()).await;
    let id = enqueue(
        &app,
        "too late",
        json!({ "expires_at": "2020-01-01T00:00:00Z" }),
    )
    .await;

    app.tick().await;
    let row = eventually("the message failed as expired", || async {
        let row = app.row(id).await;
        (row.status == "failed").then_some(row)
    })
    .await;

    assert!(app.provider.calls().is_empty(), "the provider never called");
    assert_eq!(
        row.last_error.as_deref(),
        Some("expired at 2020-01-01T00:00:00Z, before it could be sent")
    );
    assert_eq!(row.attempts, 0);
    assert_eq!(app.status().await.1["expired"], 1);
}

#[actix_web::test]
async fn a_message_that_expires_during_its_retry_backoff_ends_failed_without_another_call() {
    let app = spawn_app_with(TestOptions::default().var("RETRY_BASE_MS", 3_600_000)).await;
    app.provider
        .set_behaviour(Behaviour::failing(StatusCode::SERVICE_UNAVAILABLE));
    // Long enough that a loaded machine still makes the first call.
    let id = enqueue(&app, "short-lived", json!({ "ttl_seconds": 5 })).await;

    app.tick().await;
    assert_eq!(app.row(id).await.status, "pending", "in its backoff");
    let row = eventually_within(
        Duration::from_secs(30),
        "the message failed as expired",
        || async {
            let row = app.row(id).await;
            (row.status == "failed").then_some(row)
        },
    )
    .await;

    assert_eq!(app.provider.calls().len(), 1, "no call after the first");
    assert!(row.last_error.unwrap().starts_with("expired at "));
}

#[actix_web::test]
async fn a_bad_priority_or_expiry_is_a_clear_422_and_stores_nothing() {
    let app = spawn_app_with(TestOptions::default()).await;
    for (extra, needle) in [
        (
            json!({ "priority": 10 }),
            "priority must be between 0 and 9",
        ),
        (
            json!({ "expires_at": "2030-01-01T00:00:00Z", "ttl_seconds": 60 }),
            "not both",
        ),
        (json!({ "ttl_seconds": 0 }), "ttl_seconds"),
        (
            json!({ "send_at": "2030-01-02T00:00:00Z", "expires_at": "2030-01-01T00:00:00Z" }),
            "after send_at",
        ),
    ] {
        let mut body = json!({ "phone_number": "+905551234567", "content": "hi" });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, answer) = app.post("/api/messages", &body).await;
        assert_eq!(status, 422, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[actix_web::test]
async fn promotion_stops_once_no_higher_priority_waits() {
    let app = spawn_app_with(TestOptions::default()).await;
    let old = |content: &'static str| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO messages (phone_number, content, created_at) \
                 VALUES ('+905551234567', $1, now() - interval '1 hour') RETURNING id",
            )
            .bind(content)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let promoted = |id: i64| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT promoted FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let first = old("waited").await;
    let urgent = enqueue(&app, "urgent", json!({ "priority": 9 })).await;
    eventually("the old message promoted", || async {
        promoted(first).await.then_some(())
    })
    .await;
    // The urgent one is gone; a promoted one still waits, at priority 0.
    sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(urgent)
        .execute(&app.db)
        .await
        .unwrap();

    let second = old("waited too").await;
    let marker = enqueue(&app, "marker", json!({ "ttl_seconds": 1 })).await;
    eventually("a keeper round", || async {
        (app.row(marker).await.status == "failed").then_some(())
    })
    .await;

    assert!(!promoted(second).await, "nothing outranks it any more");
}
