//! Redis and PostgreSQL going away under the real binary, and coming back.

use std::time::Duration;

use message_dispatcher::redis;
use sqlx::PgPool;

use crate::helpers::{count, service_vars, slow_provider, Api};
use crate::helpers::{
    create_database, eventually, eventually_within, insert_messages, start_provider,
};
use crate::process::{PrivatePostgres, PrivateRedis, ServiceProcess};

#[actix_web::test]
async fn redis_down_never_pauses_sending_and_the_cache_fills_again_when_it_returns() {
    let mut redis = PrivateRedis::start().await;
    let provider = start_provider(None);
    let database_url = create_database().await;
    let url = redis.url();
    let service = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[
            ("REDIS_URL", &url),
            ("DISPATCH_INTERVAL_MS", "100"),
            ("DISPATCH_BATCH_SIZE", "2"),
        ],
    ))
    .await;
    let db = PgPool::connect(&database_url).await.unwrap();
    let cache_pool = redis::connect(&url).unwrap();
    let cached = |id: i64| {
        let cache_pool = cache_pool.clone();
        async move { redis::fetch(&cache_pool, id).await.ok().flatten() }
    };
    let before = insert_messages(&db, 2).await;
    eventually("a delivery in Redis", || cached(before[1])).await;

    redis.stop();
    let during = insert_messages(&db, 6).await;
    eventually("sending to go on without Redis", || async {
        (count(&db, "sent").await == 8).then_some(())
    })
    .await;
    assert_eq!(
        service.cache_view(during[0]).await,
        ("down".to_owned(), "database".to_owned())
    );
    assert_eq!(service.status().await.0, 200);
    assert_eq!(service.get("/api/messages/sent").await.0, 200);

    redis.restart().await;
    let after = insert_messages(&db, 2).await;
    eventually("the cache to fill again", || cached(after[1])).await;
    // The line is written after the store that filled the cache returns.
    eventually("Redis is back to be logged", || async {
        (service.log_count("Redis is back") > 0).then_some(())
    })
    .await;

    assert_eq!(
        service.log_count("Redis unavailable"),
        1,
        "said once, not once per message"
    );
    assert_eq!(service.log_count("Redis is back"), 1);
    assert_eq!(provider.stats().distinct_keys, 10);
}

#[actix_web::test]
async fn postgresql_down_keeps_the_process_up_and_nothing_is_lost_or_sent_twice() {
    let postgres = PrivatePostgres::start().await;
    let provider = slow_provider(1000);
    let database_url = postgres.url();
    let mut service = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[
            ("DISPATCH_INTERVAL_MS", "300"),
            ("DISPATCH_BATCH_SIZE", "2"),
        ],
    ))
    .await;
    let db = PgPool::connect(&database_url).await.unwrap();
    insert_messages(&db, 2).await;
    eventually("two calls in flight", || async {
        (provider.calls().len() == 2).then_some(())
    })
    .await;

    postgres.halt();
    eventually("readyz to say 503", || async {
        let (status, body) = service.get("/readyz").await;
        (status == 503 && body["postgres"] == "down").then_some(())
    })
    .await;
    eventually("a tick to be skipped", || async {
        (service.log_count("tick skipped") >= 2).then_some(())
    })
    .await;
    eventually(
        "the outcomes of finished calls to wait for the database",
        || async { (service.log_count("could not write the outcome") >= 1).then_some(()) },
    )
    .await;
    assert!(service.is_running());
    postgres.resume().await;

    eventually("readyz to say 200", || async {
        (service.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    insert_messages(&db, 2).await;
    eventually_within(Duration::from_secs(30), "every message sent", || async {
        (count(&db, "sent").await == 4).then_some(())
    })
    .await;
    let stats = provider.stats();
    assert_eq!(stats.distinct_keys, 4);
    assert_eq!(
        stats.calls, 4,
        "the calls made during the outage were recorded, not repeated"
    );
    // The line is written after the outcome it reports is committed.
    eventually("the late outcome to be logged", || async {
        (service.log_count("outcome written after PostgreSQL came back") >= 1).then_some(())
    })
    .await;
}
