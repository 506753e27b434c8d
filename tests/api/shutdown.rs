//! Graceful stop and shutdown with sends in flight.

use std::time::Duration;

use mock_provider::Behaviour;
use serde_json::json;

use crate::helpers::{spawn_app, Api};

fn slow() -> Behaviour {
    Behaviour::slow(Duration::from_millis(1500))
}

#[actix_web::test]
async fn shutdown_waits_for_in_flight_sends_and_writes_their_outcomes() {
    let app = spawn_app().await;
    app.provider.set_behaviour(slow());
    app.insert_messages(2).await;
    assert!(app.pipeline.tick().await);
    let sending = crate::helpers::count(&app.db, "sending").await;
    assert_eq!(sending, 2, "both calls are in flight");
    let db = app.db.clone();

    app.shut_down().await.expect("a clean exit");

    let statuses: Vec<String> = crate::helpers::rows(&db)
        .await
        .into_iter()
        .map(|row| row.status)
        .collect();
    assert_eq!(statuses, ["sent", "sent"]);
}

#[actix_web::test]
async fn stop_lets_in_flight_sends_finish_and_claims_nothing_more() {
    let app = spawn_app().await;
    app.provider.set_behaviour(slow());
    app.insert_messages(4).await;
    assert!(app.pipeline.tick().await);

    let (status, body) = app.stop().await;
    app.pipeline.wait_idle().await;

    assert_eq!((status, body["running"].clone()), (200, json!(false)));
    let statuses: Vec<String> = app.statuses().await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["sent", "sent", "pending", "pending"]);
    assert!(!app.pipeline.tick().await);
    assert_eq!(app.provider.calls().len(), 2);
}
