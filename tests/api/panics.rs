//! A handler that panics is restarted and the pipeline goes on.

use message_dispatcher::pipeline::{PanicOnNextClaim, PANIC_IN_SENDER};

use crate::helpers::{eventually, spawn_app, spawn_app_with, Api, TestOptions};

#[actix_web::test]
async fn a_panicking_claim_restarts_the_fetcher_and_the_next_tick_sends() {
    let app = spawn_app().await;
    let ids = app.insert_messages(2).await;
    app.pipeline.fetcher().send(PanicOnNextClaim).await.unwrap();

    app.tick().await;
    assert!(
        app.provider.calls().is_empty(),
        "the panicking tick claimed nothing"
    );
    app.tick().await;

    assert_eq!(app.provider_keys(), ids);
    assert_eq!(app.status().await.0, 200);
}

#[actix_web::test]
async fn a_panicking_send_frees_its_slot_and_the_message_is_sent_after_its_lease() {
    let app = spawn_app_with(
        TestOptions::default()
            .var("LEASE_MS", 2000)
            .var("PROVIDER_TIMEOUT_MS", 1000),
    )
    .await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (phone_number, content) VALUES ('+905551234567', $1) RETURNING id",
    )
    .bind(PANIC_IN_SENDER)
    .fetch_one(&app.db)
    .await
    .unwrap();

    app.tick().await;
    assert!(app.provider.calls().is_empty());

    eventually("the message sent after its lease", || async {
        app.tick().await;
        (!app.provider.calls().is_empty()).then_some(())
    })
    .await;
    let row = crate::helpers::row(&app.db, id).await;
    let status = row.status;
    let attempts = row.attempts;
    assert_eq!((status.as_str(), attempts), ("sent", 2));
}
