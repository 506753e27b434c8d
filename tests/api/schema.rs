//! What PostgreSQL itself refuses.

use crate::helpers::spawn_app;

async fn insert(
    app: &crate::helpers::TestApp,
    phone: &str,
    content: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO messages (phone_number, content) VALUES ($1, $2)")
        .bind(phone)
        .bind(content)
        .execute(&app.db)
        .await
        .map(|_| ())
}

fn violated_constraint(result: Result<(), sqlx::Error>) -> String {
    let error = result.expect_err("PostgreSQL refuses the row");
    let database_error = error.as_database_error().expect("a database error");
    assert_eq!(
        database_error.code().as_deref(),
        Some("23514"),
        "a CHECK violation"
    );
    database_error.constraint().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn a_row_that_breaks_a_check_is_refused_by_postgresql() {
    let app = spawn_app().await;

    for phone in [
        "905551234567",
        "+0555123456",
        "+123456",
        "+1234567890123456",
        "+90555abc4567",
    ] {
        assert_eq!(
            violated_constraint(insert(&app, phone, "hi").await),
            "messages_phone_number_e164",
            "{phone}"
        );
    }
    for content in [String::new(), "ş".repeat(161)] {
        assert_eq!(
            violated_constraint(insert(&app, "+905551234567", &content).await),
            "messages_content_length"
        );
    }
    let sent_without_delivery = sqlx::query("INSERT INTO messages (phone_number, content, status) VALUES ('+905551234567', 'x', 'sent')")
        .execute(&app.db)
        .await
        .map(|_| ());
    assert_eq!(
        violated_constraint(sent_without_delivery),
        "messages_sent_has_delivery"
    );
}

#[actix_web::test]
async fn the_limit_counts_characters_not_bytes() {
    let app = spawn_app().await;

    insert(&app, "+905551234567", &"ş".repeat(160))
        .await
        .expect("160 two-byte characters fit");
}

#[actix_web::test]
async fn sent_is_kept_equal_to_status_by_the_database() {
    let app = spawn_app().await;
    app.insert_messages(1).await;

    let sent = crate::helpers::first_row(&app.db).await.sent;
    assert!(!sent);
    sqlx::query("UPDATE messages SET status = 'sent', provider_message_id = 'p', sent_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    let sent = crate::helpers::first_row(&app.db).await.sent;
    assert!(sent);
    let direct_write = sqlx::query("UPDATE messages SET sent = false")
        .execute(&app.db)
        .await;
    assert!(direct_write.is_err(), "sent cannot be written directly");
}

async fn counted(app: &crate::helpers::TestApp) -> message_dispatcher::repository::CountsByStatus {
    let mut counts = message_dispatcher::repository::CountsByStatus::default();
    let rows = crate::helpers::counted_by_status(&app.db).await.unwrap();
    for (status, n) in rows {
        match status.as_str() {
            "pending" => counts.pending = n,
            "sending" => counts.sending = n,
            "sent" => counts.sent = n,
            _ => counts.failed = n,
        }
    }
    counts.segments_sent =
        sqlx::query_scalar("SELECT coalesce(sum(segments), 0) FROM messages WHERE status = 'sent'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    counts
}

#[actix_web::test]
async fn status_counts_follow_every_kind_of_change_without_counting_the_table() {
    use message_dispatcher::repository::{count_by_status, fold_count_deltas};
    let app = crate::helpers::spawn_app_with(
        crate::helpers::TestOptions::default().var("DISPATCH_BATCH_SIZE", 3),
    )
    .await;
    let ids = app.insert_messages(7).await;
    app.tick().await;
    sqlx::query("UPDATE messages SET status = 'failed', last_error = 'by hand' WHERE id = $1")
        .bind(ids[3])
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM messages WHERE id = $1")
        .bind(ids[4])
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE messages SET due_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(count_by_status(&app.db).await.unwrap(), counted(&app).await);

    fold_count_deltas(&app.db).await.unwrap();
    let folded: i64 = sqlx::query_scalar("SELECT count(*) FROM message_count_deltas")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        folded <= 5,
        "one row per status (and the segments) after folding, not {folded}"
    );
    assert_eq!(count_by_status(&app.db).await.unwrap(), counted(&app).await);
    assert_eq!(counted(&app).await.sent, 3);

    sqlx::query("TRUNCATE messages")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        count_by_status(&app.db).await.unwrap(),
        message_dispatcher::repository::CountsByStatus::default()
    );
}
