//! Whatever a client or a SQL user sends, a clear 4xx or a refusal by the
//! database: never a 5xx, never a panic.

use serde_json::Value;

use crate::helpers::{spawn_app, Api};

#[actix_web::test]
async fn bad_requests_get_a_4xx_in_the_spec_shape_and_never_a_5xx() {
    let app = spawn_app().await;
    let json = "application/json";
    let cases: [(&str, &str, &str, &str, u16); 17] = [
        ("POST", "/api/messages", json, "{", 400),
        ("POST", "/api/messages", json, "[1, 2]", 422),
        ("POST", "/api/messages", json, "null", 422),
        (
            "POST",
            "/api/messages",
            json,
            r#"{"phone_number": ["+905551234567"], "content": "x"}"#,
            422,
        ),
        (
            "POST",
            "/api/messages",
            json,
            r#"{"phone_number": "+905551234567", "content": "x", "extra": 1}"#,
            422,
        ),
        ("POST", "/api/messages", json, "\u{0}\u{1}garbage", 400),
        (
            "POST",
            "/api/messages",
            "text/plain",
            r#"{"phone_number": "+905551234567", "content": "x"}"#,
            415,
        ),
        ("POST", "/api/messages", json, "", 400),
        ("GET", "/api/messages/sent?limit=0", "", "", 400),
        ("GET", "/api/messages/sent?limit=10000", "", "", 400),
        (
            "GET",
            "/api/messages/sent?limit=99999999999999999999",
            "",
            "",
            400,
        ),
        ("GET", "/api/messages/sent?cursor=%00%ff", "", "", 400),
        (
            "GET",
            "/api/messages/sent?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OS4x",
            "",
            "",
            400,
        ),
        ("GET", "/api/messages/abc", "", "", 400),
        ("GET", "/api/messages/99999999999999999999", "", "", 400),
        ("GET", "/api/messages/-1", "", "", 404),
        ("GET", "/api/nothing-here", "", "", 404),
    ];
    for (method, path, content_type, body, expected) in cases {
        let url = format!("{}{path}", app.address);
        let request = match method {
            "POST" => app.api.post(url),
            _ => app.api.get(url),
        };
        let request = if content_type.is_empty() {
            request
        } else {
            request.content_type(content_type)
        };
        let mut response = request.send_body(body.to_owned()).await.unwrap();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            response.status().as_u16(),
            expected,
            "{method} {path} {body:?}: {answer}"
        );
        assert!(
            answer["error"].is_string() && answer["message"].is_string(),
            "{method} {path}: {answer}"
        );
    }
    let oversized = format!(
        r#"{{"phone_number": "+905551234567", "content": "{}"}}"#,
        "x".repeat(1 << 20)
    );
    let mut response = app
        .api
        .post(format!("{}/api/messages", app.address))
        .content_type(json)
        .send_body(oversized)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "payload_too_large");
    assert!(app.statuses().await.is_empty(), "nothing was stored");
    assert_eq!(app.get("/healthz").await.0, 200, "the service goes on");
}

#[actix_web::test]
async fn rows_with_a_null_or_too_long_content_are_refused_by_the_database() {
    let app = spawn_app().await;

    for content in [None, Some("x".repeat(161))] {
        let error = sqlx::query(
            "INSERT INTO messages (phone_number, content) VALUES ('+905551234567', $1)",
        )
        .bind(content.clone())
        .execute(&app.db)
        .await
        .expect_err("refused");
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .unwrap_or_default()
            .into_owned();
        assert!(code == "23502" || code == "23514", "{content:?}: {error}");
    }
    let error = sqlx::query("INSERT INTO messages (phone_number, content) VALUES (NULL, 'hi')")
        .execute(&app.db)
        .await
        .expect_err("refused");
    assert_eq!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("23502")
    );
}
