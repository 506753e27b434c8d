//! The keyset-paginated sent list.

use std::collections::HashSet;

use crate::helpers::{spawn_app, Api};

#[actix_web::test]
async fn the_sent_list_pages_through_250_rows_with_no_gap_and_no_repeat() {
    let app = spawn_app().await;
    // Many rows share a sent_at, so the id must break ties.
    sqlx::query(
        "INSERT INTO messages (phone_number, content, status, attempts, provider_message_id, sent_at)
         SELECT '+9055510' || lpad(g::text, 5, '0'), 'm' || g, 'sent', 1, 'p-' || g,
                timestamptz '2026-01-01' + (g % 40) * interval '1 second'
         FROM generate_series(1, 250) g",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("UPDATE messages SET provider_message_id = 'p-' || id")
        .execute(&app.db)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/messages/sent?limit=100&cursor={cursor}"),
            None => "/api/messages/sent?limit=100".to_owned(),
        };
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for item in body["items"].as_array().unwrap() {
            let sent_at =
                chrono::DateTime::parse_from_rfc3339(item["sent_at"].as_str().unwrap()).unwrap();
            seen.push((sent_at, item["id"].as_i64().unwrap()));
            assert_eq!(item["message_id"], format!("p-{}", item["id"]));
            assert!(item["phone_number"].is_string() && item["content"].is_string());
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert_eq!(
        seen.iter().map(|(_, id)| id).collect::<HashSet<_>>().len(),
        250,
        "no repeat"
    );
    assert!(
        seen.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first"
    );
}

#[actix_web::test]
async fn the_sent_list_defaults_to_20_and_ignores_unsent_rows() {
    let app = spawn_app().await;
    let ids = app.insert_messages(25).await;
    sqlx::query("UPDATE messages SET status = 'sent', provider_message_id = 'p', sent_at = now() WHERE id <= $1")
        .bind(ids[21])
        .execute(&app.db)
        .await
        .unwrap();

    let (status, body) = app.get("/api/messages/sent").await;

    assert_eq!(status, 200);
    let listed: Vec<i64> = crate::helpers::item_ids(&body);
    let newest_sent: Vec<i64> = ids[2..22].iter().rev().copied().collect();
    assert_eq!(listed, newest_sent);
    assert!(body["next_cursor"].is_string());
}

#[actix_web::test]
async fn a_bad_limit_or_a_foreign_cursor_is_a_clear_400() {
    let app = spawn_app().await;

    for query in [
        "limit=0",
        "limit=101",
        "limit=10000",
        "limit=-1",
        "limit=ten",
        "cursor=not-ours",
        "cursor=MTIz",
    ] {
        let (status, body) = app.get(&format!("/api/messages/sent?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"], "bad_request", "{query}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{query}"
        );
    }
}
