//! The OpenAPI document against what the service really serves.

use std::collections::BTreeSet;

use actix_web::http::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Api, TestApp};

/// Every route of the service, as its README and the SPEC list them.
const SERVED: [(&str, &str); 22] = [
    ("get", "/"),
    ("get", "/console.css"),
    ("get", "/console.js"),
    ("get", "/api/messaging/activity"),
    ("post", "/api/messages/{id}/retry"),
    ("post", "/api/messaging/start"),
    ("post", "/api/messaging/stop"),
    ("get", "/api/messaging/status"),
    ("get", "/api/messages"),
    ("post", "/api/messages"),
    ("post", "/api/messages/batch"),
    ("post", "/api/suppressions"),
    ("get", "/api/suppressions"),
    ("delete", "/api/suppressions/{phone_number}"),
    ("get", "/api/messages/sent"),
    ("get", "/api/messages/{id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/provider/receipts"),
    ("get", "/api/webhooks/events"),
    ("post", "/api/webhooks/events/{id}/retry"),
];

async fn document(app: &TestApp) -> Value {
    let (status, document) = app.get("/api-docs/openapi.json").await;
    assert_eq!(status, 200);
    document
}

fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect()
}

/// Calls an operation for real, with a sent message of id `id` present.
async fn call(app: &TestApp, method: &str, path: &str, id: i64) -> (u16, Value) {
    let path = path.replace("{id}", &id.to_string());
    match method {
        "post" if path == "/api/messages" => {
            app.post(
                &path,
                &json!({ "phone_number": "+905551234567", "content": "Your code is 4721" }),
            )
            .await
        }
        "post" if path == "/api/messages/batch" => {
            let message =
                json!({ "phone_number": "+905551234567", "content": "Your code is 4721" });
            app.post(&path, &json!({ "messages": [message] })).await
        }
        "post" if path == "/api/suppressions" => {
            let number = json!({ "phone_number": "+905550000000", "reason": "test" });
            app.post(&path, &number).await
        }
        "delete" => {
            let path = path.replace("{phone_number}", "+905550000000");
            let response = app
                .api
                .delete(format!("{}{path}", app.address))
                .send()
                .await;
            (response.unwrap().status().as_u16(), Value::Null)
        }
        "post" if path == "/provider/receipts" => {
            let receipt = json!({ "messageId": "unknown", "status": "delivered", "at": "2026-12-03T10:00:00Z" });
            app.receipt(&receipt, None).await
        }
        "post" => app.post(&path, &json!({})).await,
        "get" if path == "/api/webhooks/events" => app.get(&format!("{path}?status=dead")).await,
        "get" if path == "/" || path.starts_with("/console.") => {
            let mut response = app
                .api
                .get(format!("{}{path}", app.address))
                .send()
                .await
                .unwrap();
            let page = response.body().await.unwrap();
            (
                response.status().as_u16(),
                Value::String(String::from_utf8_lossy(&page).into_owned()),
            )
        }
        _ => app.get(&path).await,
    }
}

#[actix_web::test]
async fn every_served_route_is_documented_and_every_documented_one_is_served() {
    let app = spawn_app().await;
    let id = app.insert_messages(1).await[0];
    let document = document(&app).await;

    let expected: BTreeSet<(String, String)> = SERVED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(operations(&document), expected);
    for (method, path) in SERVED {
        let (status, body) = call(&app, method, path, id).await;
        // A pending message cannot be retried: 409 says the route is there;
        // so does the 404 of an event that does not exist.
        let retry = (path.starts_with("/api/messages/") && status == 409)
            || (path.starts_with("/api/webhooks/") && status == 404);
        let served = status < 400 || status == 503 || retry;
        assert!(served, "{method} {path}: {status} {body}");
    }
    let (status, body) = app.get("/api/messaging/nothing").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

/// The status, `Allow` header and error of `method path`.
async fn answer_to(app: &TestApp, method: Method, path: &str) -> (u16, Option<String>, Value) {
    let mut response = app
        .api
        .request(method, format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (response.status().as_u16(), allow, body["error"].clone())
}

#[actix_web::test]
async fn a_wrong_method_on_a_documented_path_is_405_with_allow() {
    let app = spawn_app().await;
    let not_allowed = |allow: &str| (405, Some(allow.to_owned()), json!("method_not_allowed"));

    assert_eq!(
        answer_to(&app, Method::DELETE, "/api/messaging/status").await,
        not_allowed("GET")
    );
    // A GET that the `{id}` route takes first, on a path of its own.
    assert_eq!(
        answer_to(&app, Method::GET, "/api/messages/batch").await,
        not_allowed("POST")
    );
    let (status, body) = app.get("/api/messages/abc").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
}

/// The same keys at every level, and the same JSON types where neither is
/// null.
fn assert_same_shape(example: &Value, actual: &Value, at: &str) {
    match (example, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let (ek, ak): (BTreeSet<_>, BTreeSet<_>) = (e.keys().collect(), a.keys().collect());
            assert_eq!(ek, ak, "keys at {at}");
            for key in e.keys() {
                assert_same_shape(&e[key], &a[key], &format!("{at}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e), Some(a)) = (e.first(), a.first()) {
                assert_same_shape(e, a, &format!("{at}[0]"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (e, a) => assert_eq!(
            std::mem::discriminant(e),
            std::mem::discriminant(a),
            "type at {at}: example {e}, actual {a}"
        ),
    }
}

#[actix_web::test]
async fn the_examples_of_the_document_have_the_shape_of_the_real_answers() {
    let app = spawn_app().await;
    let id = app.insert_messages(1).await[0];
    app.tick().await;
    let document = document(&app).await;

    let mut checked = 0;
    for (method, path) in operations(&document) {
        let responses = document["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap()
            .clone();
        for (status, response) in responses {
            let Some(example) = response["content"]["application/json"].get("example") else {
                continue;
            };
            let (actual_status, actual) = call(&app, &method, &path, id).await;
            if actual_status.to_string() != status {
                continue;
            }
            assert_same_shape(example, &actual, &format!("{method} {path} {status}"));
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} examples were compared");
}

#[actix_web::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;

    let mut page = app
        .api
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    let mut script = app
        .api
        .get(format!("{}/docs/swagger-ui-bundle.js", app.address))
        .send()
        .await
        .unwrap();
    let bundle = script.body().limit(16 << 20).await.unwrap();

    assert_eq!(page.status(), 200);
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no asset from a CDN: {html}");
    assert_eq!(script.status(), 200);
    assert!(bundle.len() > 100_000, "the vendored bundle");
}

#[actix_web::test]
async fn the_document_gives_the_callback_url_pattern_the_service_checks() {
    let app = spawn_app().await;
    let document = document(&app).await;

    let pattern =
        &document["components"]["schemas"]["NewMessage"]["properties"]["callback_url"]["pattern"];

    assert_eq!(
        pattern.as_str(),
        Some(message_dispatcher::domain::CALLBACK_URL_PATTERN)
    );
}
