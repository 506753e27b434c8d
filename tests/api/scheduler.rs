//! Start, stop and status.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Api, TestOptions};

#[actix_web::test]
async fn stopped_scheduler_sends_nothing_on_next_tick() {
    let app = spawn_app().await;

    let (status, body) = app.stop().await;
    app.insert_messages(2).await;

    assert_eq!(status, 200);
    assert_eq!(body["running"], false);
    assert_eq!(body["next_tick_at"], Value::Null);
    assert!(!app.tick().await, "a stopped scheduler does not tick");
    assert!(app.provider.calls().is_empty());
}

#[actix_web::test]
async fn start_resumes_with_a_tick_at_once() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let ids = app.insert_messages(3).await;

    let (status, body) = app.start().await;
    app.pipeline.settle().await;
    app.pipeline.wait_idle().await;

    assert_eq!(status, 200);
    assert_eq!(body["running"], true);
    assert!(body["next_tick_at"].is_string());
    assert_eq!(app.provider_keys(), ids[..2]);
}

#[actix_web::test]
async fn start_and_stop_are_idempotent() {
    let app = spawn_app().await;
    app.insert_messages(4).await;

    for _ in 0..2 {
        let (status, body) = app.start().await;
        assert_eq!((status, body["running"].clone()), (200, json!(true)));
    }
    app.pipeline.settle().await;
    app.pipeline.wait_idle().await;
    assert!(
        app.provider.calls().is_empty(),
        "starting a running scheduler fires no extra tick"
    );

    for _ in 0..2 {
        let (status, body) = app.stop().await;
        assert_eq!((status, body["running"].clone()), (200, json!(false)));
    }
    assert!(!app.tick().await);
}

#[actix_web::test]
async fn concurrent_starts_never_double_the_rate() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let ids = app.insert_messages(20).await;

    let empty = json!({});
    let answers = join_all((0..16).map(|_| app.post("/api/messaging/start", &empty))).await;
    app.pipeline.settle().await;
    app.pipeline.wait_idle().await;

    assert!(answers
        .iter()
        .all(|(status, body)| *status == 200 && body["running"] == true));
    assert_eq!(
        app.provider_keys(),
        ids[..2],
        "one start, one first tick, one timer"
    );
}

#[actix_web::test]
async fn status_reports_pace_ticks_and_counts() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 3)).await;
    app.insert_messages(5).await;
    app.tick().await;

    let (status, body) = app.status().await;

    assert_eq!(status, 200);
    assert_eq!(body["running"], true);
    assert_eq!(body["batch_size"], 3);
    assert_eq!(body["interval_ms"], 3_600_000);
    assert_eq!(body["scope"], "instance");
    assert_eq!(body["instances"][0]["instance_id"], "test");
    assert_eq!(body["instance_id"], "test");
    assert!(body["last_tick_at"].is_string());
    assert!(body["next_tick_at"].is_string());
    assert_eq!(
        body["counts"],
        json!({ "pending": 2, "sending": 0, "sent": 3, "failed": 0, "delivered": 0, "undelivered": 0,
                "segments_sent": 3 })
    );
}

#[actix_web::test]
async fn stop_cancels_the_timer() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_INTERVAL_MS", 20)).await;
    app.stop().await;
    let (_, before) = app.status().await;
    app.insert_messages(2).await;

    // Nothing to await: an absence. Ten intervals pass.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let (_, after) = app.status().await;
    assert_eq!(
        after["last_tick_at"], before["last_tick_at"],
        "no tick after the stop"
    );
    assert!(app.provider.calls().is_empty());
}
