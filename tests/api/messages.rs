//! Enqueueing and reading messages, and the API key.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Api, TestOptions};

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
    let (status, body) = app.message(id).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "sent");
    assert_eq!(body["attempts"], 1);
    assert_eq!(
        body["provider_message_id"].as_str(),
        app.provider.calls()[0].message_id.as_deref()
    );
    assert_eq!(body["provider"], "default", "PROVIDER_URL's provider");
    let history = body["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["provider"], "default");
    assert_eq!(history[0]["result"], "accepted");
    assert_eq!(history[0]["http_status"], 202);
    assert_eq!(history[0]["error"], Value::Null);
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
            json!({ "phone_number": "+905551234567", "content": "hi", "urgency": 1 }),
            422,
            "urgency",
        ),
    ];
    for (body, expected, mentions) in cases {
        let (status, answer) = app.enqueue(&body).await;
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
    let (status, answer) = app.enqueue(&huge).await;
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

    let (status, body) = app.status().await;
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
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let right = app
            .status_with_authorization(&format!("{scheme} sesame"))
            .await;
        assert_eq!(right.status(), 200, "{scheme}");
    }
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
}

#[actix_web::test]
async fn the_message_list_filters_by_status_and_time_and_pages_without_gaps() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 3)).await;
    let ids = app.insert_messages(7).await;
    app.tick().await;
    sqlx::query("UPDATE messages SET created_at = '2020-01-01T00:00:00Z' WHERE id = $1")
        .bind(ids[6])
        .execute(&app.db)
        .await
        .unwrap();

    let (status, sent) = app.get("/api/messages?status=sent").await;
    assert_eq!(status, 200);
    let sent_ids: Vec<i64> = crate::helpers::item_ids(&sent);
    assert_eq!(
        sent_ids,
        [ids[2], ids[1], ids[0]],
        "newest first, sent only"
    );

    let (_, old) = app
        .get("/api/messages?created_before=2021-01-01T00:00:00Z")
        .await;
    assert_eq!(old["items"].as_array().unwrap().len(), 1);
    assert_eq!(old["items"][0]["id"].as_i64(), Some(ids[6]));
    let (_, recent) = app
        .get("/api/messages?status=pending&created_after=2021-01-01T00:00:00Z")
        .await;
    assert_eq!(recent["items"].as_array().unwrap().len(), 3);

    let mut seen = Vec::new();
    let mut path = "/api/messages?limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/messages?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    for bad in [
        "status=done",
        "created_after=yesterday",
        "limit=0",
        "cursor=%%%",
    ] {
        let (status, body) = app.get(&format!("/api/messages?{bad}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn during_a_rotation_the_previous_api_key_is_accepted_too() {
    let app = spawn_app_with(
        TestOptions::default()
            .var("API_KEY", "new")
            .var("API_KEY_PREVIOUS", "old"),
    )
    .await;

    for (key, expected) in [("new", 200), ("old", 200), ("older", 401)] {
        let response = app
            .status_with_authorization(&format!("Bearer {key}"))
            .await;
        assert_eq!(response.status().as_u16(), expected, "{key}");
    }
}

#[actix_web::test]
async fn a_failed_message_can_be_retried_and_is_then_sent() {
    let app = spawn_app().await;
    app.provider.set_behaviour(mock_provider::Behaviour {
        failure_rate: 1.0,
        failure_status: actix_web::http::StatusCode::BAD_REQUEST,
        ..mock_provider::Behaviour::accept_all()
    });
    let id = app.insert_messages(1).await[0];
    app.tick().await;
    app.provider
        .set_behaviour(mock_provider::Behaviour::accept_all());

    let (status, body) = app.retry(id).await;
    assert_eq!(
        (status, body["status"].as_str(), body["attempts"].as_i64()),
        (200, Some("pending"), Some(0))
    );
    let (status, body) = app.retry(id).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    let (status, _) = app.retry(999999).await;
    assert_eq!(status, 404);
    app.tick().await;

    let (_, message) = app.message(id).await;
    assert_eq!(
        (message["status"].as_str(), message["attempts"].as_i64()),
        (Some("sent"), Some(1))
    );
    let (status, activity) = app.get("/api/messaging/activity").await;
    assert_eq!(status, 200);
    let minutes = activity["minutes"].as_array().unwrap();
    let total = |kind: &str| {
        minutes
            .iter()
            .map(|m| m[kind].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!((total("sent"), total("failed")), (1, 1));
}

#[actix_web::test]
async fn every_message_answer_gives_its_encoding_and_segments() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_BATCH_SIZE", 10)).await;
    for (content, encoding, segments) in [
        ("Your code is 4721".to_owned(), "gsm7", 1),
        ("€".repeat(81), "gsm7", 2),
        ("Şifreniz 4721 😀".to_owned(), "ucs2", 1),
        ("😀".repeat(36), "ucs2", 2),
    ] {
        let body = json!({ "phone_number": "+905551234567", "content": content });
        let (status, stored) = app.post("/api/messages", &body).await;
        assert_eq!(status, 201, "{stored}");
        assert_eq!(
            (stored["encoding"].as_str(), stored["segments"].as_u64()),
            (Some(encoding), Some(segments)),
            "{content}"
        );
        let (_, read) = app.message(stored["id"].as_i64().unwrap()).await;
        assert_eq!(
            (read["encoding"].as_str(), read["segments"].as_u64()),
            (Some(encoding), Some(segments))
        );
    }
    let (_, page) = app.get("/api/messages?status=pending").await;
    let segments: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["segments"].as_u64().unwrap())
        .collect();
    assert_eq!(segments, [2, 1, 2, 1], "newest first");

    app.tick().await;
    let (_, status) = app.status().await;
    assert_eq!(status["counts"]["sent"], 4);
    assert_eq!(
        status["counts"]["segments_sent"], 6,
        "what the provider bills"
    );
}
