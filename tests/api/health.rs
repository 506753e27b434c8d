//! Liveness and readiness.

use crate::helpers::{spawn_app, Api};

#[actix_web::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;

    let (status, body) = app.get("/healthz").await;

    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

#[actix_web::test]
async fn readyz_says_postgresql_and_redis_are_up() {
    let app = spawn_app().await;

    let (status, body) = app.get("/readyz").await;

    assert_eq!(status, 200);
    assert_eq!(body["ready"], true);
    assert_eq!(body["postgres"], "up");
    assert_eq!(body["redis"], "up");
}
