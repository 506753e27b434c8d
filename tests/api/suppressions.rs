//! The suppression list (SPEC Part 2).

use serde_json::{json, Value};

use crate::helpers::{spawn_app, Api, TestApp};

const NUMBER: &str = "+905551234567";

async fn suppress(app: &TestApp, number: &str, reason: &str) -> (u16, Value) {
    app.post(
        "/api/suppressions",
        &json!({ "phone_number": number, "reason": reason }),
    )
    .await
}

async fn unsuppress(app: &TestApp, number: &str) -> u16 {
    let response = app
        .api
        .delete(format!("{}/api/suppressions/{number}", app.address))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn enqueue(app: &TestApp, number: &str) -> i64 {
    let (status, body) = app
        .enqueue(&json!({ "phone_number": number, "content": "hello" }))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

#[actix_web::test]
async fn a_message_to_a_suppressed_number_is_never_posted_and_ends_failed() {
    let app = spawn_app().await;
    assert_eq!(suppress(&app, NUMBER, "replied STOP").await.0, 201);
    let id = enqueue(&app, NUMBER).await;
    let other = enqueue(&app, "+905559999999").await;

    app.tick().await;

    let calls = app.provider.calls();
    assert_eq!(calls.len(), 1, "only the other number");
    assert_eq!(calls[0].to, "+905559999999");
    let row = app.row(id).await;
    assert_eq!(row.status, "failed");
    assert_eq!(row.last_error.as_deref(), Some("suppressed: replied STOP"));
    assert_eq!(app.row(other).await.status, "sent");
}

#[actix_web::test]
async fn adding_a_number_fails_its_pending_messages_at_once() {
    let app = spawn_app().await;
    let ids = [enqueue(&app, NUMBER).await, enqueue(&app, NUMBER).await];

    let (status, body) = suppress(&app, NUMBER, "").await;

    assert_eq!(status, 201, "{body}");
    for id in ids {
        let row = app.row(id).await;
        assert_eq!(row.status, "failed");
        assert_eq!(row.last_error.as_deref(), Some("suppressed"));
    }
    app.tick().await;
    assert!(app.provider.calls().is_empty());
}

#[actix_web::test]
async fn removing_a_number_lets_new_messages_go_and_a_second_removal_is_404() {
    let app = spawn_app().await;
    suppress(&app, NUMBER, "replied STOP").await;
    let before = enqueue(&app, NUMBER).await;
    app.tick().await;

    assert_eq!(unsuppress(&app, NUMBER).await, 204);
    let after = enqueue(&app, NUMBER).await;
    app.tick().await;

    assert_eq!(app.row(before).await.status, "failed", "stays failed");
    assert_eq!(app.row(after).await.status, "sent");
    assert_eq!(unsuppress(&app, NUMBER).await, 404);
    assert_eq!(unsuppress(&app, "not-a-number").await, 404);
}

#[actix_web::test]
async fn adding_twice_keeps_the_first_reason_and_the_list_pages_by_number() {
    let app = spawn_app().await;
    let (first, stored) = suppress(&app, NUMBER, "replied STOP").await;
    let (second, again) = suppress(&app, NUMBER, "another reason").await;
    assert_eq!((first, second), (201, 201));
    assert_eq!(again, stored);
    for n in 0..24 {
        suppress(&app, &format!("+9055500000{n:02}"), "bounced").await;
    }

    let mut seen = Vec::new();
    let mut path = "/api/suppressions?limit=10".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["phone_number"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/suppressions?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "by number, no repeat");
    assert_eq!(seen.len(), 25);
    let (status, body) = suppress(&app, "0555", "x").await;
    assert_eq!(status, 422, "{body}");
}
