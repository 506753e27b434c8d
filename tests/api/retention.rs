//! `RETENTION_DAYS`: finished messages past it are deleted with their
//! history; unfinished and recent ones stay; bookkeeping rows are pruned
//! whether it is set or not.

use actix_web::http::StatusCode;
use message_dispatcher::repository;
use mock_provider::Behaviour;
use sqlx::PgPool;

use crate::helpers::{counted_by_status, eventually, spawn_app, spawn_app_with, Api, TestOptions};

/// Inserts a message finished (or not) `days` ago, with one attempt and one
/// delivered webhook event; returns its id.
pub async fn finished(db: &PgPool, status: &str, days: i32) -> i64 {
    let id: i64 = sqlx::query_scalar(
        r#"
        INSERT INTO messages (phone_number, content, status, provider_message_id, sent_at,
                              created_at, due_at, attempts)
        VALUES ('+905551234567', 'old news', $1,
                CASE WHEN $1 = 'sent' THEN 'pm-' || $2 END,
                CASE WHEN $1 = 'sent' THEN now() - $2 * interval '1 day' END,
                now() - ($2 + 1) * interval '1 day', now() - $2 * interval '1 day', 1)
        RETURNING id
        "#,
    )
    .bind(status)
    .bind(days)
    .fetch_one(db)
    .await
    .expect("insert a message");
    sqlx::query(
        r#"
        WITH a AS (
            INSERT INTO message_attempts (message_id, provider, started_at, duration_ms, result)
            VALUES ($1, 'default', now() - $2 * interval '1 day', 5, 'accepted')
        )
        INSERT INTO webhook_events (message_id, type, url, status, delivered_at)
        VALUES ($1, 'message.sent', 'http://127.0.0.1:1/hook', 'delivered', now())
        "#,
    )
    .bind(id)
    .bind(days)
    .execute(db)
    .await
    .expect("its history");
    id
}

/// Ids of the messages left, and how many attempts and events they hold.
async fn left(db: &PgPool) -> (Vec<i64>, i64, i64) {
    sqlx::query_as(
        r#"
        SELECT (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM messages),
               (SELECT count(*) FROM message_attempts),
               (SELECT count(*) FROM webhook_events)
        "#,
    )
    .fetch_one(db)
    .await
    .expect("what is left")
}

#[actix_web::test]
async fn finished_messages_past_retention_go_with_their_history_and_the_rest_stay() {
    let first = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let db = first.db.clone();
    let old_sent = [
        finished(&db, "sent", 40).await,
        finished(&db, "sent", 31).await,
    ];
    let old_failed = finished(&db, "failed", 35).await;
    let recent_sent = finished(&db, "sent", 29).await;
    let recent_failed = finished(&db, "failed", 2).await;
    let old_pending = finished(&db, "pending", 40).await;
    let waiting_event = finished(&db, "failed", 40).await;
    sqlx::query("UPDATE webhook_events SET status = 'pending' WHERE message_id = $1")
        .bind(waiting_event)
        .execute(&db)
        .await
        .unwrap();
    let (database_url, provider) = (first.database_url.clone(), first.provider.clone());
    first.shut_down().await.unwrap();

    let app = spawn_app_with(
        TestOptions {
            database_url: Some(database_url),
            provider: Some(provider),
            ..TestOptions::default()
        }
        .var("DISPATCH_AUTOSTART", false)
        .var("RETENTION_DAYS", 30),
    )
    .await;
    let (ids, attempts, events) = eventually("the old messages deleted", || async {
        let now = left(&app.db).await;
        (now.0.len() == 4).then_some(now)
    })
    .await;

    assert_eq!(
        ids,
        [recent_sent, recent_failed, old_pending, waiting_event]
    );
    assert!(!ids.contains(&old_failed) && !old_sent.iter().any(|id| ids.contains(id)));
    assert_eq!(
        (attempts, events),
        (4, 4),
        "the history of the kept ones only"
    );
    let counted = counted_by_status(&app.db).await.unwrap();
    let (_, status) = app.status().await;
    for (state, n) in counted {
        assert_eq!(
            status["counts"][&state], n,
            "status counts {state} as the table does"
        );
    }
    eventually("the deletions counted", || async {
        let metrics = app.get_text("/metrics").await;
        metrics
            .contains("dispatcher_messages_deleted_total 3")
            .then_some(())
    })
    .await;
}

#[actix_web::test]
async fn without_retention_messages_stay_and_bookkeeping_is_pruned() {
    let first = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let db = first.db.clone();
    let old = finished(&db, "sent", 400).await;
    sqlx::query(
        r#"
        WITH a AS (
            INSERT INTO dispatch_activity (minute, sent)
            VALUES (date_trunc('minute', now() - interval '2 days'), 5),
                   (date_trunc('minute', now() - interval '2 hours'), 7)
        )
        INSERT INTO dispatch_instances (instance_id, scope, started_at, seen_at)
        VALUES ('gone-long-ago', 'cluster', now() - interval '3 days', now() - interval '2 days')
        "#,
    )
    .execute(&db)
    .await
    .unwrap();
    let (database_url, provider) = (first.database_url.clone(), first.provider.clone());
    first.shut_down().await.unwrap();

    let app = spawn_app_with(TestOptions {
        database_url: Some(database_url),
        provider: Some(provider),
        ..TestOptions::default()
    })
    .await;
    let sent: Vec<i64> = eventually("the two-day-old minute deleted", || async {
        let minutes: Vec<i64> = sqlx::query_scalar("SELECT sent FROM dispatch_activity")
            .fetch_all(&app.db)
            .await
            .unwrap();
        (minutes.len() == 1).then_some(minutes)
    })
    .await;

    assert_eq!(sent, [7], "the last day is kept");
    let instances: Vec<String> = sqlx::query_scalar("SELECT instance_id FROM dispatch_instances")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(instances, ["test"], "only the live instance is remembered");
    assert_eq!(left(&app.db).await, (vec![old], 1, 1), "no message deleted");
}

#[actix_web::test]
async fn a_failed_message_keeps_the_time_it_failed_for_retention() {
    let app = spawn_app().await;
    app.provider
        .set_behaviour(Behaviour::failing(StatusCode::BAD_REQUEST));
    let id = app.insert_messages(1).await[0];
    sqlx::query("UPDATE messages SET due_at = now() - interval '90 days' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();

    app.tick().await;

    let failed_seconds_ago: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - due_at)::float8 FROM messages WHERE id = $1 AND status = 'failed'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let ago = failed_seconds_ago.expect("the message failed");
    assert!(
        (0.0..60.0).contains(&ago),
        "due_at is when it failed: {ago} s ago"
    );
}

#[actix_web::test]
async fn messages_held_by_their_webhook_events_never_stall_the_pass() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let db = app.db.clone();
    let mut held = Vec::new();
    for days in [50, 49] {
        let id = finished(&db, "failed", days).await;
        sqlx::query("UPDATE webhook_events SET status = 'pending' WHERE message_id = $1")
            .bind(id)
            .execute(&db)
            .await
            .unwrap();
        held.push(id);
    }
    let deletable = finished(&db, "failed", 40).await;
    let month = std::time::Duration::from_secs(30 * 86_400);
    // A batch of one: the oldest that can go, not the oldest.
    let deleted = repository::delete_finished(&db, month, 1).await.unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(left(&db).await.0, held);
    assert!(!left(&db).await.0.contains(&deletable));
    assert_eq!(repository::delete_finished(&db, month, 1).await.unwrap(), 0);
}
