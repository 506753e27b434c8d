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

    let sent: bool = sqlx::query_scalar("SELECT sent FROM messages")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!sent);
    sqlx::query("UPDATE messages SET status = 'sent', provider_message_id = 'p', sent_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    let sent: bool = sqlx::query_scalar("SELECT sent FROM messages")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(sent);
    let direct_write = sqlx::query("UPDATE messages SET sent = false")
        .execute(&app.db)
        .await;
    assert!(direct_write.is_err(), "sent cannot be written directly");
}
