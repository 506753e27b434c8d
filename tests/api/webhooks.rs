//! Status webhooks (SPEC Part 2, "Status webhooks to the client"), received
//! by `tests/webhooks/receiver.py`, which checks every signature with the
//! Standard Webhooks library.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock_provider::{Behaviour, Receipts};
use serde_json::{json, Value};

use crate::helpers::{
    create_database, eventually, eventually_within, service_vars, spawn_app_with, start_provider,
    Api, TestApp, TestOptions,
};
use crate::process::{free_port, ServiceProcess};

/// A Standard Webhooks secret, as the libraries expect it.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The Python receiver, on a port of its own.
struct Receiver {
    port: u16,
    child: Child,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// Starts the receiver on `port` and waits until it listens.
    fn start_on(port: u16) -> Self {
        let python = std::env::var("WEBHOOK_VERIFIER_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/receiver.py");
        let mut child = Command::new(&python)
            .args([script, &port.to_string(), SECRET])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python for the webhook receiver");
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (ready, listening) = std::sync::mpsc::channel();
        std::thread::spawn({
            let seen = seen.clone();
            move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let line: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                    if line.get("listening").is_some() {
                        let _ = ready.send(());
                    } else {
                        seen.lock().unwrap().push(line);
                    }
                }
            }
        });
        listening
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                "the webhook receiver did not start: it needs Python with the standardwebhooks \
                 package (scripts/test sets WEBHOOK_VERIFIER_PYTHON; {python} was used)"
            )
            });
        Receiver { port, child, seen }
    }

    fn start() -> Self {
        Self::start_on(free_port())
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Every request received, in order of arrival.
    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests it answered 2xx.
    fn accepted(&self) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|line| line["answered"].as_u64().is_some_and(|s| s < 300))
            .collect()
    }

    /// Makes the next `count` requests fail with 500.
    async fn fail_next(&self, count: u32) {
        self.control("/fail", json!({ "count": count })).await;
    }

    /// Makes every answer wait `ms`.
    async fn delay(&self, ms: u64) {
        self.control("/delay", json!({ "ms": ms })).await;
    }

    async fn control(&self, path: &str, body: Value) {
        let status = awc::Client::default()
            .post(format!("http://127.0.0.1:{}{path}", self.port))
            .send_json(&body)
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 204);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The types each message's accepted events had, in order of arrival.
fn types_by_message(lines: &[Value]) -> HashMap<i64, Vec<String>> {
    let mut types: HashMap<i64, Vec<String>> = HashMap::new();
    for line in lines {
        types
            .entry(line["message_id"].as_i64().unwrap())
            .or_default()
            .push(line["type"].as_str().unwrap().to_owned());
    }
    types
}

/// Each of `ids` got `message.sent`, then `message.delivered`, and no other
/// event.
fn assert_sent_then_delivered(accepted: &[Value], ids: &[i64]) {
    let types = types_by_message(accepted);
    for id in ids {
        assert_eq!(
            types[id],
            ["message.sent", "message.delivered"],
            "message {id}"
        );
    }
}

/// The app with webhooks to `receiver` and the mock's receipts back to it.
async fn app_with_webhooks(receiver: &Receiver, extra: &[(&'static str, &str)]) -> TestApp {
    let mut options = TestOptions::default()
        .var("WEBHOOK_URL", receiver.url())
        .var("WEBHOOK_SECRET", SECRET)
        .var("WEBHOOK_RETRY_BASE_MS", 50)
        .var("DISPATCH_BATCH_SIZE", 20);
    for (name, value) in extra {
        options = options.var(name, value);
    }
    let app = spawn_app_with(options).await;
    app.provider.set_behaviour(Behaviour {
        receipts: Some(Receipts {
            url: format!("{}/provider/receipts", app.address),
            key: None,
            delay: Duration::from_millis(20),
            undelivered_rate: 0.0,
            before_answer: false,
        }),
        ..Behaviour::accept_all()
    });
    app
}

#[actix_web::test]
async fn every_event_arrives_signed_and_in_order_once_per_delivery() {
    let receiver = Receiver::start();
    let app = app_with_webhooks(&receiver, &[]).await;
    let ids = app.insert_messages(20).await;

    app.tick().await;

    // Every event settled: then no delivery is left to come.
    let accepted = eventually_within(
        Duration::from_secs(30),
        "40 events, all settled",
        || async {
            let (_, status) = app.status().await;
            let accepted = receiver.accepted();
            (accepted.len() >= 40 && status["webhooks"]["pending"] == 0).then_some(accepted)
        },
    )
    .await;
    assert!(receiver.seen().iter().all(|line| line["verified"] == true));
    assert_eq!(accepted.len(), 40, "one delivery per event");
    let ids_seen: HashSet<&str> = accepted.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids_seen.len(), 40, "a webhook-id per event");
    assert_sent_then_delivered(&accepted, &ids);
    let delivered = accepted
        .iter()
        .find(|line| line["type"] == "message.delivered")
        .unwrap();
    assert_eq!(
        delivered["delivery_status"], "delivered",
        "data is the message"
    );
    let (_, message) = app.message(app.rows().await[0].id).await;
    let events = message["webhook_events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|event| event["status"] == "delivered"));
}

#[actix_web::test]
async fn two_instances_never_post_one_event_twice_and_keep_each_message_in_order() {
    let receiver = Receiver::start();
    // One post at a time per instance, each a tenth of a second: the events
    // outlast a poll of the second instance, so both take some.
    receiver.delay(100).await;
    let extra = [("WEBHOOK_CONCURRENCY", "1")];
    let first = app_with_webhooks(&receiver, &extra).await;
    let mut options = TestOptions {
        database_url: Some(first.database_url.clone()),
        ..TestOptions::default()
    };
    for (name, value) in [
        ("WEBHOOK_URL", receiver.url()),
        ("WEBHOOK_SECRET", SECRET.to_owned()),
        ("WEBHOOK_CONCURRENCY", "1".to_owned()),
        ("INSTANCE_ID", "second".to_owned()),
    ] {
        options = options.var(name, value);
    }
    let second = spawn_app_with(options).await;
    let ids = first.insert_messages(10).await;

    first.tick().await;

    let accepted = eventually_within(Duration::from_secs(30), "20 events, settled", || async {
        let (_, status) = second.status().await;
        let accepted = receiver.accepted();
        (accepted.len() >= 20 && status["webhooks"]["pending"] == 0).then_some(accepted)
    })
    .await;
    assert_eq!(receiver.seen().len(), 20, "no event posted twice");
    let ids_seen: HashSet<&str> = accepted.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids_seen.len(), 20);
    assert_sent_then_delivered(&accepted, &ids);
}

#[actix_web::test]
async fn a_receiver_that_fails_for_a_while_still_gets_every_event_in_order() {
    let receiver = Receiver::start();
    receiver.fail_next(15).await;
    let app = app_with_webhooks(&receiver, &[]).await;
    let ids = app.insert_messages(10).await;

    app.tick().await;

    let accepted = eventually_within(Duration::from_secs(30), "20 events", || async {
        let accepted = receiver.accepted();
        (accepted.len() >= 20).then_some(accepted)
    })
    .await;
    assert!(
        receiver.seen().len() >= 35,
        "15 refusals, then 20 deliveries"
    );
    assert_sent_then_delivered(&accepted, &ids);
    let retried: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE attempts > 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(retried > 0);
}

#[actix_web::test]
async fn an_event_out_of_attempts_is_dead_listed_and_delivered_when_retried() {
    let receiver = Receiver::start();
    receiver.fail_next(1000).await;
    let app = app_with_webhooks(&receiver, &[("WEBHOOK_MAX_ATTEMPTS", "2")]).await;
    app.provider.set_behaviour(Behaviour::accept_all());
    app.insert_messages(1).await;
    app.tick().await;

    let dead = eventually("a dead event", || async {
        let (status, page) = app.get("/api/webhooks/events?status=dead").await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["type"], "message.sent");
    assert_eq!(dead[0]["attempts"], 2);
    assert_eq!(dead[0]["last_error"], "answered 500 Internal Server Error");
    let (_, status) = app.status().await;
    assert_eq!(status["webhooks"]["dead"], 1);

    receiver.fail_next(0).await;
    let id = dead[0]["id"].as_i64().unwrap();
    let (status, event) = app
        .post(&format!("/api/webhooks/events/{id}/retry"), &json!({}))
        .await;
    assert_eq!((status, event["status"].as_str()), (200, Some("pending")));
    eventually("the retried event", || async {
        (!receiver.accepted().is_empty()).then_some(())
    })
    .await;
    let (status, _) = app
        .post(&format!("/api/webhooks/events/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, 409, "a delivered event is not dead");
    let (status, _) = app
        .post("/api/webhooks/events/999999999/retry", &json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/api/webhooks/events?status=pending").await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn a_callback_url_outside_the_allowed_hosts_is_422_and_one_inside_gets_the_events() {
    let receiver = Receiver::start();
    let app = spawn_app_with(
        TestOptions::default()
            .var("WEBHOOK_ALLOWED_HOSTS", "hooks.example.com, 127.0.0.1")
            .var("WEBHOOK_SECRET", SECRET),
    )
    .await;
    let body = |url: &str| json!({ "phone_number": "+905551234567", "content": "hello", "callback_url": url });

    for refused in [
        "https://evil.example.net/x",
        "ftp://127.0.0.1/x",
        "not a url",
    ] {
        let (status, error) = app.enqueue(&body(refused)).await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(error["error"], "validation_failed");
    }
    let (status, stored) = app.enqueue(&body(&receiver.url())).await;
    assert_eq!(status, 201);
    assert_eq!(stored["callback_url"], receiver.url());

    // No WEBHOOK_URL: the message's own URL gets its events.
    app.tick().await;
    let accepted = eventually("the sent event", || async {
        let accepted = receiver.accepted();
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    assert_eq!(accepted[0]["type"], "message.sent");
    assert_eq!(accepted[0]["message_id"], stored["id"]);
}

/// A server that answers every request with a redirect to `target`.
fn redirecting_server(target: String) -> (u16, actix_web::dev::ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = actix_web::HttpServer::new(move || {
        let target = target.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let target = target.clone();
            async move {
                actix_web::HttpResponse::TemporaryRedirect()
                    .insert_header(("Location", target))
                    .finish()
            }
        }))
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (port, handle)
}

#[actix_web::test]
async fn a_receiver_that_redirects_or_never_answers_holds_up_no_other_event() {
    let receiver = Receiver::start();
    let (redirect_port, redirect) = redirecting_server(receiver.url());
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let app = spawn_app_with(
        TestOptions::default()
            .var("WEBHOOK_URL", receiver.url())
            .var("WEBHOOK_SECRET", SECRET)
            .var("WEBHOOK_TIMEOUT_MS", 20_000)
            .var("DISPATCH_BATCH_SIZE", 10),
    )
    .await;
    for url in [
        format!("http://127.0.0.1:{redirect_port}/hook"),
        format!("http://127.0.0.1:{silent_port}/hook"),
    ] {
        let body = json!({ "phone_number": "+905551234567", "content": "hi", "callback_url": url });
        assert_eq!(app.enqueue(&body).await.0, 201);
    }
    app.insert_messages(5).await;

    app.tick().await;

    // The five to the receiver arrive well within the silent one's 20 s.
    eventually("the other events", || async {
        (receiver.accepted().len() >= 5).then_some(())
    })
    .await;
    let redirected = app.rows().await[0].id;
    let error = eventually("the redirect's error", || async {
        let (_, message) = app.message(redirected).await;
        message["webhook_events"][0]["last_error"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    assert!(error.contains("redirects are not followed"), "{error}");
    assert_eq!(
        receiver.accepted().len(),
        5,
        "the redirect was not followed"
    );
    redirect.stop(false).await;
    drop(silent);
}

#[actix_web::test]
async fn an_event_of_a_state_change_arrives_after_the_service_is_killed_before_posting_it() {
    let provider = start_provider(None);
    let port = free_port();
    let database_url = create_database().await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let vars = service_vars(
        &database_url,
        &provider,
        &[
            ("WEBHOOK_URL", url.as_str()),
            ("WEBHOOK_SECRET", SECRET),
            ("WEBHOOK_RETRY_BASE_MS", "100"),
            ("DISPATCH_AUTOSTART", "false"),
        ],
    );
    let mut first = ServiceProcess::start(&vars).await;
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    crate::helpers::insert_messages(&db, 1).await;
    // The receiver is not up yet: the event waits in the outbox.
    assert_eq!(first.start().await.0, 200);
    eventually("the sent event in the outbox", || async {
        let attempts: Option<i32> =
            sqlx::query_scalar("SELECT attempts FROM webhook_events WHERE type = 'message.sent'")
                .fetch_optional(&db)
                .await
                .unwrap();
        attempts.filter(|&a| a >= 1)
    })
    .await;

    first.kill();
    let receiver = Receiver::start_on(port);
    let _second = ServiceProcess::start(&vars).await;

    let accepted = eventually_within(
        Duration::from_secs(30),
        "the event after the restart",
        || async {
            let accepted = receiver.accepted();
            (!accepted.is_empty()).then_some(accepted)
        },
    )
    .await;
    assert_eq!(accepted[0]["type"], "message.sent");
    assert_eq!(accepted[0]["verified"], true);
}
