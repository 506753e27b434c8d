//! The Redis delivery cache, and sending without it.

use message_dispatcher::redis;

use crate::helpers::{eventually, redis_url, spawn_app, spawn_app_with, Api, TestOptions};

#[actix_web::test]
async fn a_sent_message_is_cached_in_redis_and_served_from_it() {
    let app = spawn_app().await;
    let ids = app.insert_messages(1).await;

    app.tick().await;

    let redis = redis::connect(&redis_url()).unwrap();
    let cached = eventually("message:<id> in Redis", || async {
        redis::fetch(&redis, ids[0]).await.ok().flatten()
    })
    .await;
    let call = &app.provider.calls()[0];
    assert_eq!(Some(cached.message_id.clone()), call.message_id);
    let (status, body) = app.get(&format!("/api/messages/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(body["delivery_source"], "cache");
    assert_eq!(body["provider_message_id"], cached.message_id);
}

#[actix_web::test]
async fn sending_works_without_redis() {
    let app = spawn_app_with(TestOptions::default().var("REDIS_URL", "")).await;
    let ids = app.insert_messages(2).await;

    app.tick().await;

    assert_eq!(app.provider_keys(), ids);
    assert_eq!(
        app.cache_view(ids[0]).await,
        ("disabled".to_owned(), "database".to_owned())
    );
}

#[actix_web::test]
async fn sending_works_with_redis_unreachable() {
    let app = spawn_app_with(TestOptions::default().var("REDIS_URL", "redis://127.0.0.1:1")).await;
    let ids = app.insert_messages(2).await;

    app.tick().await;

    assert_eq!(app.provider_keys(), ids);
    assert!(app
        .statuses()
        .await
        .iter()
        .all(|(_, status)| status == "sent"));
    assert_eq!(
        app.cache_view(ids[0]).await,
        ("down".to_owned(), "database".to_owned())
    );
    let (status, _) = app.status().await;
    assert_eq!(status, 200);
}
