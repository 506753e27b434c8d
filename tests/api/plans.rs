//! The outbox and receipt statements keep to index walks and probes on
//! tables that grew after their statistics were taken (or before any were):
//! what a fresh deployment, or a burst faster than autovacuum, looks like.

use sqlx::PgPool;

use crate::helpers::spawn_app;
use message_dispatcher::repository::{CLAIM_EVENTS, DELETE_FINISHED, RECORD_RECEIPTS};

/// The text plan of `statement` with these parameters, as the service's
/// connections plan it (custom plans only).
async fn plan(
    db: &PgPool,
    statement: &str,
    bind: impl FnOnce(Explain<'_>) -> Explain<'_>,
) -> String {
    let mut connection = db.acquire().await.unwrap();
    sqlx::query("SET plan_cache_mode = force_custom_plan")
        .execute(&mut *connection)
        .await
        .unwrap();
    let explain = format!("EXPLAIN (COSTS OFF) {statement}");
    let lines: Vec<String> = bind(sqlx::query_scalar(&explain))
        .fetch_all(&mut *connection)
        .await
        .unwrap();
    lines.join("\n")
}

type Explain<'q> =
    sqlx::query::QueryScalar<'q, sqlx::Postgres, String, sqlx::postgres::PgArguments>;

#[actix_web::test]
async fn the_event_claim_walks_the_unfinished_index_of_an_outbox_never_analyzed() {
    let app = spawn_app().await;
    sqlx::query(
        "INSERT INTO webhook_events (message_id, type, url, status)
         SELECT g % 40000, 'message.sent', 'http://127.0.0.1:9/hooks',
                CASE WHEN g <= 5000 THEN 'delivered' ELSE 'pending' END
         FROM generate_series(1, 50000) g",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let plan = plan(&app.db, CLAIM_EVENTS, |query| {
        query.bind(32_i64).bind(60_000_i64)
    })
    .await;

    assert!(
        plan.contains("Index Scan using webhook_events_unfinished on webhook_events e"),
        "{plan}"
    );
    assert!(plan.contains("Nested Loop Anti Join"), "{plan}");
    for scan in ["Seq Scan", "Bitmap", "Sort", "Hash", "Materialize"] {
        assert!(!plan.contains(scan), "no {scan}:\n{plan}");
    }
}

#[actix_web::test]
async fn receipts_probe_the_provider_id_index_when_the_statistics_predate_the_ids() {
    let app = spawn_app().await;
    // Analyzed while no message had a provider id, as before a first send.
    sqlx::query(
        "INSERT INTO messages (phone_number, content)
         SELECT '+9055' || lpad(g::text, 8, '0'), 'm' || g FROM generate_series(1, 50000) g",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("ANALYZE messages")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE messages SET status = 'sent', attempts = 1, sent_at = now(),
                provider_message_id = 'p-' || id",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT provider_message_id FROM messages ORDER BY random() LIMIT 100")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let count = ids.len();

    let plan = plan(&app.db, &RECORD_RECEIPTS, |query| {
        query
            .bind(ids)
            .bind(vec!["delivered"; count])
            .bind(vec![None::<String>; count])
            .bind(vec![chrono::Utc::now(); count])
            .bind(None::<String>)
    })
    .await;

    assert!(
        plan.contains("Index Scan using messages_by_provider_message_id on messages m"),
        "{plan}"
    );
    for scan in ["Seq Scan on messages", "Merge"] {
        assert!(!plan.contains(scan), "no {scan}:\n{plan}");
    }
}

#[actix_web::test]
async fn retention_walks_the_oldest_finished_and_probes_each_ones_history() {
    let app = spawn_app().await;
    for statement in [
        "INSERT INTO messages (phone_number, content, status, provider_message_id, sent_at, due_at)
         SELECT '+905551234567', 'old', 'sent', 'pm-' || g, now() - interval '40 days', now()
         FROM generate_series(1, 20000) g",
        "INSERT INTO webhook_events (message_id, type, url, status)
         SELECT m.id, 'message.sent', 'http://127.0.0.1:9/hooks',
                CASE WHEN m.id % 2 = 0 THEN 'delivered' ELSE 'pending' END
         FROM messages m",
        "ANALYZE messages, webhook_events, message_attempts",
        // The history grew after its statistics were taken.
        "INSERT INTO message_attempts (message_id, provider, started_at, duration_ms, result)
         SELECT m.id, 'default', now() - interval '40 days', 5, 'accepted' FROM messages m",
    ] {
        sqlx::query(statement).execute(&app.db).await.unwrap();
    }

    let month_ms = 30_i64 * 86_400_000;
    let plan = plan(&app.db, DELETE_FINISHED, |query| {
        query.bind(month_ms).bind(1000_i64)
    })
    .await;

    for walk in [
        "Index Scan Backward using messages_sent_newest on messages",
        "Nested Loop Anti Join",
        "Index Cond: (message_id = messages.id)",
        "on message_attempts_by_message",
    ] {
        assert!(plan.contains(walk), "{walk}:\n{plan}");
    }
    for scan in ["Seq Scan", "Hash", "Sort"] {
        assert!(!plan.contains(scan), "no {scan}:\n{plan}");
    }
}
