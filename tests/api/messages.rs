//! Enqueueing and reading messages, and the API key.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, TestOptions};

#[actix_web::test]
async fn a_posted_message_is_stored_pending_and_then_sent() {
    let app = spawn_app().await;

    let (status, body) = app
        .post(
            "/api/messages",
            &json!({ "phone_number": "+905551234567", "content": "Merhaba ş" }),
        )
        .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["content"], "Merhaba ş");
    let id = body["id"].as_i64().unwrap();
    app.tick().await;
    let (status, body) = app.get(&format!("/api/messages/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "sent");
    assert_eq!(body["attempts"], 1);
    assert_eq!(
        body["provider_message_id"].as_str(),
        app.provider.calls()[0].message_id.as_deref()
    );
}

#[actix_web::test]
async fn bad_input_is_refused_with_a_clear_error_and_stores_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "phone_number": "05551234567", "content": "hi" }),
            422,
            "phone_number",
        ),
        (
            json!({ "phone_number": "+905551234567", "content": "" }),
            422,
            "content",
        ),
        (
            json!({ "phone_number": "+905551234567", "content": "x".repeat(161) }),
            422,
            "160",
        ),
        (json!({ "phone_number": "+905551234567" }), 422, "content"),
        (
            json!({ "phone_number": 905551234567u64, "content": "hi" }),
            422,
            "expected a string",
        ),
        (
            json!({ "phone_number": "+905551234567", "content": "hi", "priority": 1 }),
            422,
            "priority",
        ),
    ];
    for (body, expected, mentions) in cases {
        let (status, answer) = app.post("/api/messages", &body).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert_eq!(answer["error"], "validation_failed");
        assert!(
            answer["message"].as_str().unwrap().contains(mentions),
            "{answer}"
        );
    }

    let mut malformed = app
        .api
        .post(format!("{}/api/messages", app.address))
        .content_type("application/json")
        .send_body("{\"phone_number\": ")
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let answer: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(answer["error"], "bad_request");

    let huge = json!({ "phone_number": "+905551234567", "content": "x".repeat(100_000) });
    let (status, answer) = app.post("/api/messages", &huge).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("payload_too_large"))
    );

    assert!(app.statuses().await.is_empty(), "nothing was stored");
}

#[actix_web::test]
async fn an_unknown_or_malformed_id_is_a_clear_error() {
    let app = spawn_app().await;

    let (status, body) = app.get("/api/messages/999999").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = app.get("/api/messages/abc").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
}

#[actix_web::test]
async fn with_an_api_key_the_api_requires_it_and_health_stays_open() {
    let app = spawn_app_with(TestOptions::default().var("API_KEY", "sesame")).await;

    let (status, body) = app.get("/api/messaging/status").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let wrong = app
        .api
        .get(format!("{}/api/messaging/status", app.address))
        .insert_header(("Authorization", "Bearer sesame2"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = app
        .api
        .get(format!("{}/api/messaging/status", app.address))
        .insert_header(("Authorization", "Bearer sesame"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
}
