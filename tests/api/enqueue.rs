//! Enqueue, idempotent and in bulk (SPEC Part 2).

use std::time::Instant;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Api, TestApp, TestOptions};

/// `POST /api/messages` with an `Idempotency-Key`.
async fn enqueue_with_key(app: &TestApp, key: &str, body: &Value) -> (u16, Value) {
    let mut response = app
        .api
        .post(format!("{}/api/messages", app.address))
        .insert_header(("Idempotency-Key", key))
        .send_json(body)
        .await
        .expect("POST");
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    (response.status().as_u16(), answer)
}

async fn rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn message(content: &str) -> Value {
    json!({ "phone_number": "+905551234567", "content": content })
}

#[actix_web::test]
async fn the_same_key_twice_stores_one_row_and_answers_it_again() {
    let app = spawn_app().await;

    let (first, stored) = enqueue_with_key(&app, "order-42", &message("Your code is 4721")).await;
    let (second, again) = enqueue_with_key(&app, "order-42", &message("Your code is 4721")).await;

    assert_eq!((first, second), (201, 200));
    assert_eq!(stored, again, "the message stored the first time");
    assert_eq!(rows(&app).await, 1);
}

#[actix_web::test]
async fn the_same_key_with_another_body_is_409_and_stores_nothing() {
    let app = spawn_app().await;
    enqueue_with_key(&app, "order-42", &message("Your code is 4721")).await;

    let (status, answer) = enqueue_with_key(&app, "order-42", &message("Your code is 9999")).await;

    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"], "conflict");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    assert_eq!(rows(&app).await, 1);
}

#[actix_web::test]
async fn two_instances_storing_one_key_at_once_store_one_row() {
    let first = spawn_app().await;
    let second = spawn_app_with(TestOptions {
        database_url: Some(first.database_url.clone()),
        ..TestOptions::default()
    })
    .await;
    for round in 0..20 {
        let key = format!("key-{round}");
        let body = message(&format!("round {round}"));
        let (a, b) = futures_util::join!(
            enqueue_with_key(&first, &key, &body),
            enqueue_with_key(&second, &key, &body)
        );
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 201], "round {round}");
        assert_eq!(a.1["id"], b.1["id"], "round {round}");
    }
    assert_eq!(rows(&first).await, 20);
}

#[actix_web::test]
async fn a_malformed_key_is_a_clear_400() {
    let app = spawn_app().await;
    for key in ["has space", &"k".repeat(256)] {
        let (status, answer) = enqueue_with_key(&app, key, &message("hi")).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"));
    }
    assert_eq!(rows(&app).await, 0);
}

#[actix_web::test]
async fn a_batch_with_one_bad_item_stores_none_and_names_its_index() {
    let app = spawn_app().await;
    let batch = json!({ "messages": [
        message("one"),
        { "phone_number": "05551234567", "content": "two" },
        message("three"),
        { "phone_number": "+905551234567", "content": "four", "priority": 12 },
    ]});

    let (status, answer) = app.post("/api/messages/batch", &batch).await;

    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "validation_failed");
    assert_eq!(
        answer["message"],
        "2 of 4 messages are invalid; none was stored"
    );
    let indexes: Vec<u64> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 3]);
    assert!(answer["items"][1]["message"]
        .as_str()
        .unwrap()
        .contains("priority"));
    assert_eq!(rows(&app).await, 0);
    for empty in [json!({ "messages": [] }), json!({})] {
        let (status, _) = app.post("/api/messages/batch", &empty).await;
        assert!(status == 422 || status == 400, "{status}");
    }
}

#[actix_web::test]
async fn a_batch_of_10000_is_stored_in_order_with_one_statement() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..10_000)
        .map(|i| json!({ "phone_number": "+905551234567", "content": format!("item {i}"), "priority": i % 10 }))
        .collect();

    let started = Instant::now();
    let (status, answer) = app
        .post("/api/messages/batch", &json!({ "messages": items }))
        .await;
    let elapsed = started.elapsed();

    assert_eq!(status, 201, "{answer}");
    let ids: Vec<i64> = answer["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 10_000);
    println!(
        "batch of 10,000: {:.0} items/s over HTTP (debug build)",
        10_000.0 / elapsed.as_secs_f64()
    );
    let stored: Vec<(i64, String, i16)> =
        sqlx::query_as("SELECT id, content, priority FROM messages ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(stored.len(), 10_000);
    for (n, (id, content, priority)) in stored.iter().enumerate() {
        assert_eq!(*id, ids[n]);
        assert_eq!(content, &format!("item {n}"));
        assert_eq!(i64::from(*priority), n as i64 % 10);
    }
    let (status, _) = app
        .post(
            "/api/messages/batch",
            &json!({ "messages": vec![message("x"); 10_001] }),
        )
        .await;
    assert_eq!(status, 422, "over 10,000");
}
