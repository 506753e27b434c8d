//! A provider's 429 with Retry-After pauses every call.

use actix_web::http::StatusCode;
use mock_provider::Behaviour;

use crate::helpers::{eventually, spawn_app_with, TestOptions};

#[actix_web::test]
async fn retry_after_stops_every_call_until_then_and_the_message_is_not_failed() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 1)).await;
    app.provider.set_behaviour(Behaviour {
        failure_rate: 1.0,
        failure_status: StatusCode::TOO_MANY_REQUESTS,
        retry_after_secs: Some(2),
        ..Behaviour::accept_all()
    });
    let ids = app.insert_messages(3).await;

    app.tick().await;
    app.provider.set_behaviour(Behaviour::accept_all());
    assert!(app.tick().await);
    assert_eq!(
        app.provider.calls().len(),
        1,
        "no call while the provider asked to wait"
    );
    let row = crate::helpers::row(&app.db, ids[0]).await;
    let status = row.status;
    let attempts = row.attempts;
    assert_eq!(
        (status.as_str(), attempts),
        ("pending", 1),
        "rate limited, not failed"
    );

    eventually("all three sent", || async {
        app.tick().await;
        (app.provider.stats().distinct_keys == 3).then_some(())
    })
    .await;

    let calls = app.provider.calls();
    let limited_at = calls[0].received_at_ms;
    assert!(
        calls[1..]
            .iter()
            .all(|call| call.received_at_ms >= limited_at + 2000),
        "a call went out before Retry-After"
    );
    let statuses: Vec<String> = app
        .statuses()
        .await
        .into_iter()
        .map(|(_, status)| status)
        .collect();
    assert_eq!(statuses, ["sent", "sent", "sent"]);
}
