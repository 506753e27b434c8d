//! Delivery receipts: `POST /provider/receipts`, and every race a real
//! provider produces (SPEC Part 2, "Delivery receipts from the provider").

use std::time::Duration;

use message_dispatcher::repository;
use mock_provider::{Behaviour, Receipts};
use serde_json::{json, Value};

use crate::helpers::{
    eventually, eventually_within, spawn_app, spawn_app_with, Api, TestApp, TestOptions,
};
use crate::metrics::labelled;

/// A receipt body.
fn receipt(message_id: &str, status: &str, at: &str) -> Value {
    json!({ "messageId": message_id, "status": status, "at": at })
}

/// Sends one message and returns its id and the provider's id.
async fn one_sent(app: &TestApp) -> (i64, String) {
    let id = app.insert_messages(1).await[0];
    app.tick().await;
    let row = app.row(id).await;
    assert_eq!(row.status, "sent");
    (id, row.provider_message_id.expect("the provider's id"))
}

/// Receipts kept for ids no message holds, by id.
async fn kept(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT provider_message_id, status FROM unmatched_receipts ORDER BY 1")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

/// The row of `id` once a receipt set its delivery status (90 s at most:
/// receipts come over HTTP, through a batch, and one that raced its outcome
/// may wait for the match of receipts kept over a minute ago).
async fn with_delivery(app: &TestApp, id: i64) -> crate::helpers::Row {
    eventually_within(Duration::from_secs(90), "a receipt applied", || async {
        let row = app.row(id).await;
        row.delivery_status.is_some().then_some(row)
    })
    .await
}

/// The mock's receipts, posted to `app`.
fn receipts_to(app: &TestApp, delay: Duration, before_answer: bool) -> Receipts {
    Receipts {
        url: format!("{}/provider/receipts", app.address),
        key: None,
        delay,
        undelivered_rate: 0.0,
        before_answer,
    }
}

#[actix_web::test]
async fn a_delivered_receipt_sets_the_delivery_fields_and_the_message_stays_sent() {
    let app = spawn_app().await;
    let (id, provider_id) = one_sent(&app).await;

    let (status, _) = app
        .receipt(
            &receipt(&provider_id, "delivered", "2026-12-03T10:00:00Z"),
            None,
        )
        .await;

    assert_eq!(status, 202);
    let (_, message) = app.message(id).await;
    assert_eq!(message["status"], "sent");
    assert_eq!(message["delivery_status"], "delivered");
    assert_eq!(message["delivered_at"], "2026-12-03T10:00:00Z");
    assert_eq!(message["delivery_error"], Value::Null);
    let row = app.row(id).await;
    assert!(row.sent);
    let (_, status) = app.status().await;
    assert_eq!(status["counts"]["delivered"], 1);
}

#[actix_web::test]
async fn a_repeated_receipt_is_accepted_and_changes_nothing() {
    let app = spawn_app().await;
    let (id, provider_id) = one_sent(&app).await;
    let body = receipt(&provider_id, "delivered", "2026-12-03T10:00:00Z");
    assert_eq!(app.receipt(&body, None).await.0, 202);
    let first = app.row(id).await;

    assert_eq!(app.receipt(&body, None).await.0, 202);

    let again = app.row(id).await;
    assert_eq!(again.delivery_status.as_deref(), Some("delivered"));
    assert_eq!(again.delivered_at, first.delivered_at);
    let (_, status) = app.status().await;
    assert_eq!(status["counts"]["delivered"], 1, "counted once");
}

#[actix_web::test]
async fn of_receipts_out_of_order_the_latest_at_wins() {
    let app = spawn_app().await;
    let (id, provider_id) = one_sent(&app).await;
    let mut undelivered = receipt(&provider_id, "expired", "2026-12-03T10:00:05Z");
    undelivered["error"] = json!("validity period over");
    assert_eq!(app.receipt(&undelivered, None).await.0, 202);

    // Earlier than the one applied: stored, changes nothing.
    let earlier = receipt(&provider_id, "delivered", "2026-12-03T10:00:01Z");
    assert_eq!(app.receipt(&earlier, None).await.0, 202);
    let row = app.row(id).await;
    assert_eq!(row.delivery_status.as_deref(), Some("undelivered"));
    assert_eq!(
        row.delivery_error.as_deref(),
        Some("expired: validity period over")
    );

    // Later: wins.
    let later = receipt(&provider_id, "delivered", "2026-12-03T10:00:09Z");
    assert_eq!(app.receipt(&later, None).await.0, 202);
    let row = app.row(id).await;
    assert_eq!(row.delivery_status.as_deref(), Some("delivered"));
    assert_eq!(row.delivery_error, None);
    assert_eq!(
        row.delivered_at.map(|at| at.to_rfc3339()),
        Some("2026-12-03T10:00:09+00:00".to_owned())
    );
}

#[actix_web::test]
async fn a_receipt_for_an_unknown_id_is_kept_counted_and_pruned_after_a_day() {
    let app = spawn_app().await;

    let (status, _) = app
        .receipt(
            &receipt("no-such-id", "delivered", "2026-12-03T10:00:00Z"),
            None,
        )
        .await;

    assert_eq!(status, 202);
    assert_eq!(
        kept(&app).await,
        vec![("no-such-id".to_owned(), "delivered".to_owned())]
    );
    // The recorder is the test process's, shared with the other tests.
    let metrics = app.get_text("/metrics").await;
    let unknown = labelled(&metrics, "dispatcher_receipts_total", r#"result="unknown""#);
    assert!(unknown >= 1.0, "{metrics}");
    assert!(metrics.contains("dispatcher_receipts_kept "), "{metrics}");
    let (_, status) = app.status().await;
    assert_eq!(status["receipts_kept"], 1);

    // A day later it goes; a fresh one stays.
    sqlx::query("UPDATE unmatched_receipts SET received_at = now() - interval '25 hours'")
        .execute(&app.db)
        .await
        .unwrap();
    app.receipt(
        &receipt("other-id", "rejected", "2026-12-03T10:00:00Z"),
        None,
    )
    .await;
    let pruned =
        repository::prune_kept_receipts(&app.db, message_dispatcher::pipeline::KEEP_UNMATCHED, 100)
            .await
            .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(
        kept(&app).await,
        vec![("other-id".to_owned(), "rejected".to_owned())]
    );
}

#[actix_web::test]
async fn a_receipt_that_comes_before_the_outcome_is_applied_when_the_outcome_is_written() {
    let app = spawn_app().await;
    // The mock posts the receipt, and waits for its 202, before it answers
    // the send: the receipt is stored before the outcome.
    app.provider.set_behaviour(Behaviour {
        receipts: Some(receipts_to(&app, Duration::ZERO, true)),
        ..Behaviour::accept_all()
    });
    let id = app.insert_messages(1).await[0];

    app.tick().await;

    let posted = app.provider.receipts();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].answered, 202);
    let row = app.row(id).await;
    assert_eq!(row.status, "sent");
    assert_eq!(
        row.provider_message_id.as_deref(),
        Some(posted[0].message_id.as_str())
    );
    assert_eq!(row.delivery_status.as_deref(), Some("delivered"));
    assert!(kept(&app).await.is_empty(), "taken by the outcome");
}

#[actix_web::test]
async fn a_receipt_that_raced_its_outcome_is_applied_a_second_later_not_a_minute() {
    let app = spawn_app().await;
    let (id, _) = one_sent(&app).await;
    // The outcome of another message is being written: its id is stored,
    // not yet committed, when the receipt for that id comes in.
    let mut outcome = app.db.begin().await.unwrap();
    sqlx::query("UPDATE messages SET provider_message_id = 'racing' WHERE id = $1")
        .bind(id)
        .execute(&mut *outcome)
        .await
        .unwrap();

    let (status, _) = app
        .receipt(
            &receipt("racing", "delivered", "2026-12-03T10:00:00Z"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(kept(&app).await.len(), 1, "blind to the outcome, kept");
    outcome.commit().await.unwrap();

    // Not the match of receipts kept over a minute ago: the look at the
    // batch's own ids a second after it was written.
    let row = eventually("the raced receipt applied", || async {
        let row = app.row(id).await;
        row.delivery_status.is_some().then_some(row)
    })
    .await;
    assert_eq!(row.delivery_status.as_deref(), Some("delivered"));
    assert!(kept(&app).await.is_empty());
}

#[actix_web::test]
async fn a_receipt_that_raced_its_outcome_is_applied_by_the_next_match_of_kept_receipts() {
    let app = spawn_app().await;
    let (id, provider_id) = one_sent(&app).await;
    // What the race leaves: the outcome written without seeing the receipt,
    // the receipt kept without seeing the outcome, a little over a minute
    // ago.
    sqlx::query(
        "INSERT INTO unmatched_receipts (provider_message_id, status, error, at, received_at) \
         VALUES ($1, 'undelivered', 'absent subscriber', now(), now() - interval '70 seconds')",
    )
    .bind(&provider_id)
    .execute(&app.db)
    .await
    .unwrap();

    // An instance that starts now looks at the ten minutes before (the
    // first one may have looked already, before the row was there).
    let _another = spawn_app_with(TestOptions {
        database_url: Some(app.database_url.clone()),
        ..TestOptions::default()
    })
    .await;

    let row = with_delivery(&app, id).await;

    assert_eq!(row.delivery_status.as_deref(), Some("undelivered"));
    assert_eq!(
        row.delivery_error.as_deref(),
        Some("undelivered: absent subscriber")
    );
    assert!(kept(&app).await.is_empty());
}

#[actix_web::test]
async fn the_mock_reports_deliveries_and_failures_to_delivery_on_its_own() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 10)).await;
    app.provider.set_behaviour(Behaviour {
        receipts: Some(Receipts {
            undelivered_rate: 1.0,
            ..receipts_to(&app, Duration::from_millis(10), false)
        }),
        ..Behaviour::accept_all()
    });
    let ids = app.insert_messages(10).await;

    app.tick().await;

    for id in ids {
        let row = with_delivery(&app, id).await;
        assert_eq!(row.delivery_status.as_deref(), Some("undelivered"));
        assert_eq!(
            row.delivery_error.as_deref(),
            Some("undelivered: handset unreachable")
        );
    }
    let (_, status) = app.status().await;
    assert_eq!(status["counts"]["undelivered"], 10);
}

#[actix_web::test]
async fn a_flood_of_receipts_is_written_in_batches_and_every_one_applied() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 100)).await;
    app.insert_messages(100).await;
    app.tick().await;
    let sent = crate::helpers::rows_in(&app.db, "sent").await;
    assert_eq!(sent.len(), 100);

    let app = &app;
    let posts = sent.iter().map(|row| {
        let body = receipt(
            row.provider_message_id.as_deref().unwrap(),
            "delivered",
            "2026-12-03T10:00:00Z",
        );
        async move { app.receipt(&body, None).await.0 }
    });
    let answers = futures_util::future::join_all(posts).await;

    assert!(answers.iter().all(|&status| status == 202), "{answers:?}");
    let delivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE delivery_status = 'delivered'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(delivered, 100);
}

#[actix_web::test]
async fn with_a_receipt_key_a_receipt_without_it_is_401_and_changes_nothing() {
    let app = spawn_app_with(TestOptions::default().var("RECEIPT_AUTH_KEY", "r3ceipt")).await;
    let (id, provider_id) = one_sent(&app).await;
    let body = receipt(&provider_id, "delivered", "2026-12-03T10:00:00Z");

    let (missing, error) = app.receipt(&body, None).await;
    let (wrong, _) = app.receipt(&body, Some("r3ceipu")).await;

    assert_eq!((missing, wrong), (401, 401));
    assert_eq!(error["error"], "unauthorized");
    assert_eq!(app.row(id).await.delivery_status, None);
    assert_eq!(app.receipt(&body, Some("r3ceipt")).await.0, 202);
    assert_eq!(
        app.row(id).await.delivery_status.as_deref(),
        Some("delivered")
    );
}

#[actix_web::test]
async fn a_bad_receipt_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    let (id, provider_id) = one_sent(&app).await;
    let bad = [
        json!({ "messageId": provider_id, "status": "read", "at": "2026-12-03T10:00:00Z" }),
        json!({ "messageId": provider_id, "status": "delivered" }),
        json!({ "messageId": provider_id, "status": "delivered", "at": "yesterday" }),
        json!({ "messageId": "", "status": "delivered", "at": "2026-12-03T10:00:00Z" }),
        json!({ "status": "delivered", "at": "2026-12-03T10:00:00Z" }),
        json!(["not", "an", "object"]),
    ];
    for body in bad {
        let (status, error) = app.receipt(&body, None).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"], "bad_request", "{body}");
    }
    let (status, _) = app
        .post_raw("/provider/receipts", b"{\"messageId\": ")
        .await;
    assert_eq!(status, 400);
    let huge = format!(
        r#"{{"messageId": "{provider_id}", "status": "delivered", "at": "2026-12-03T10:00:00Z", "error": "{}"}}"#,
        "x".repeat(20_000)
    );
    let (status, error) = app.post_raw("/provider/receipts", huge.as_bytes()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (status, error) = app
        .post_raw("/provider/receipts", &vec![b' '; 300 * 1024])
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(app.row(id).await.delivery_status, None);
    assert!(kept(&app).await.is_empty());
}
