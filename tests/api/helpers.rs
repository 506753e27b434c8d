//! `spawn_app()`: the service on a random port, over a database of its own,
//! with the mock provider on another random port.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use message_dispatcher::configuration::Settings;
use message_dispatcher::domain::Claim;
use message_dispatcher::pipeline::Pipeline;
use message_dispatcher::repository::{self, ClaimPolicy, Turn};
use message_dispatcher::startup::Application;
use mock_provider::{Behaviour, MockProvider};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::oneshot;

/// The server that holds the test databases.
fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A running service and what it talks to.
pub struct TestApp {
    pub address: String,
    pub db: PgPool,
    pub database_url: String,
    pub provider: Arc<MockProvider>,
    pub pipeline: Pipeline,
    pub api: awc::Client,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for one test; each field overrides a variable.
#[derive(Default)]
pub struct TestOptions {
    pub vars: Vec<(&'static str, String)>,
    /// Reuse this database (a restart) instead of a fresh one.
    pub database_url: Option<String>,
    /// Reuse this provider instead of a fresh one.
    pub provider: Option<Arc<MockProvider>>,
}

impl TestOptions {
    /// One more variable; an empty value unsets it.
    pub fn var(mut self, name: &'static str, value: impl ToString) -> Self {
        self.vars.push((name, value.to_string()));
        self
    }
}

/// The service with the test defaults: batch 2, autostart, an interval so
/// long that only the first tick and `tick()` ever fire.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// The service with some variables overridden.
pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        message_dispatcher::telemetry::init(message_dispatcher::configuration::LogFormat::Pretty);
    }
    let fresh = options.database_url.is_none();
    let database_url = match options.database_url {
        Some(url) => url,
        None => create_database().await,
    };
    let provider = match options.provider {
        Some(provider) => provider,
        None => Arc::new(start_provider(None)),
    };
    let in_process = [
        ("REDIS_URL", redis_url()),
        ("HTTP_ADDR", "127.0.0.1:0".into()),
        ("INSTANCE_ID", "test".into()),
        // Most tests drive ticks one by one (`tick()`), which the fleet's
        // shared pace of cluster scope would refuse; tests/api/cluster.rs
        // covers that scope with real processes.
        ("DISPATCH_SCOPE", "instance".into()),
    ];
    let mut vars: HashMap<String, String> = base_vars(&database_url, &provider)
        .into_iter()
        .chain(in_process.map(|(name, value)| (name.to_owned(), value)))
        .collect();
    for (name, value) in options.vars {
        if value.is_empty() {
            vars.remove(name);
        } else {
            vars.insert(name.to_owned(), value);
        }
    }
    let settings = Settings::from_map(&vars).expect("test settings are valid");
    let application = Application::build(settings)
        .await
        .expect("the service starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let pipeline = application.pipeline();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let served = actix_rt::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    // The first tick fires at start; let it finish so tests start from a
    // known state.
    pipeline.settle().await;
    let db = PgPool::connect(&database_url).await.expect("test database");
    if fresh {
        // Ids of their own per test: the tests share one Redis, where
        // `message:<id>` of one test must not be read by another.
        let start = 1_000_000 + u64::from(fastrand::u32(..)) * 1000;
        sqlx::query(&format!(
            "ALTER TABLE messages ALTER COLUMN id RESTART WITH {start}"
        ))
        .execute(&db)
        .await
        .expect("restart the ids");
    }
    TestApp {
        address,
        db,
        database_url,
        provider,
        pipeline,
        api: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        shutdown: Some(shutdown),
        served: Some(served),
    }
}

/// The variables every test service starts with, in-process or as a
/// process: its database, its provider, a provider time-out shorter than
/// the default, and an interval so long that only the first tick (and the
/// test's own `tick()`) fire.
pub fn base_vars(database_url: &str, provider: &MockProvider) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url.to_owned()),
        ("PROVIDER_URL", provider.send_url()),
        ("DISPATCH_INTERVAL_MS", "3600000".to_owned()),
        ("PROVIDER_TIMEOUT_MS", "5000".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// The variables of a service process: [`base_vars`], then `extra`, which
/// wins.
pub fn service_vars(
    database_url: &str,
    provider: &MockProvider,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut vars = base_vars(database_url, provider);
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_string(), value.to_string()));
    }
    vars
}

/// A mock provider that takes `latency_ms` to answer each call.
pub fn slow_provider(latency_ms: u64) -> Arc<MockProvider> {
    let provider = Arc::new(start_provider(None));
    provider.set_behaviour(Behaviour::slow(Duration::from_millis(latency_ms)));
    provider
}

/// One row of `messages`, every column a test asserts on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub status: String,
    /// The generated column, kept by the database from `status`.
    pub sent: bool,
    pub attempts: i32,
    pub provider_message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub claimed_by: Option<String>,
    pub due_at: DateTime<Utc>,
    /// `due_at - now()`, in seconds.
    pub due_in: f64,
    pub delivery_status: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub delivery_error: Option<String>,
}

const ROW: &str = "SELECT id, status, sent, attempts, provider_message_id, sent_at, last_error, \
                   claimed_by, due_at, extract(epoch FROM due_at - now())::float8 AS due_in, \
                   delivery_status, delivered_at, delivery_error \
                   FROM messages";

/// Every row, by id.
pub async fn rows(db: &PgPool) -> Vec<Row> {
    sqlx::query_as(&format!("{ROW} ORDER BY id"))
        .fetch_all(db)
        .await
        .expect("read the messages")
}

/// The row of one message.
pub async fn row(db: &PgPool, id: i64) -> Row {
    sqlx::query_as(&format!("{ROW} WHERE id = $1"))
        .bind(id)
        .fetch_one(db)
        .await
        .expect("read a message")
}

/// The row of lowest id: the message of a test that has only one.
pub async fn first_row(db: &PgPool) -> Row {
    rows(db).await.into_iter().next().expect("a message")
}

/// The rows in `status`, by id.
pub async fn rows_in(db: &PgPool, status: &str) -> Vec<Row> {
    sqlx::query_as(&format!("{ROW} WHERE status = $1 ORDER BY id"))
        .bind(status)
        .fetch_all(db)
        .await
        .expect("read the messages")
}

/// How many rows are in `status`.
pub async fn count(db: &PgPool, status: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM messages WHERE status = $1")
        .bind(status)
        .fetch_one(db)
        .await
        .expect("count the messages")
}

/// Rows by status, counted in the table itself.
pub async fn counted_by_status(db: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, count(*) FROM messages GROUP BY status ORDER BY 1")
        .fetch_all(db)
        .await
}

/// The ids of the items of a page answered by a list endpoint.
pub fn item_ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("a page")
        .iter()
        .map(|item| item["id"].as_i64().expect("an id"))
        .collect()
}

/// What a test does through the HTTP API, the same on the service in-process
/// ([`TestApp`]) and on the real binary (`ServiceProcess`): a request by
/// path, and one method per endpoint. Each answers the status and the JSON
/// body (null when there is none).
#[allow(async_fn_in_trait)]
pub trait Api {
    /// `GET` a path.
    async fn get(&self, path: &str) -> (u16, Value);

    /// `POST` a JSON body to a path.
    async fn post(&self, path: &str, body: &Value) -> (u16, Value);

    /// `POST /api/messaging/start`.
    async fn start(&self) -> (u16, Value) {
        self.post("/api/messaging/start", &serde_json::json!({}))
            .await
    }

    /// `POST /api/messaging/stop`.
    async fn stop(&self) -> (u16, Value) {
        self.post("/api/messaging/stop", &serde_json::json!({}))
            .await
    }

    /// `GET /api/messaging/status`.
    async fn status(&self) -> (u16, Value) {
        self.get("/api/messaging/status").await
    }

    /// `POST /api/messages`.
    async fn enqueue(&self, body: &Value) -> (u16, Value) {
        self.post("/api/messages", body).await
    }

    /// `GET /api/messages/{id}`.
    async fn message(&self, id: i64) -> (u16, Value) {
        self.get(&format!("/api/messages/{id}")).await
    }

    /// What `/readyz` says of Redis, and where `GET /api/messages/{id}` took
    /// the delivery data from (`cache` or `database`); both answer 200.
    async fn cache_view(&self, id: i64) -> (String, String) {
        let (status, ready) = self.get("/readyz").await;
        assert_eq!(status, 200, "{ready}");
        let (status, message) = self.message(id).await;
        assert_eq!(status, 200, "{message}");
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        (text(&ready["redis"]), text(&message["delivery_source"]))
    }

    /// `POST /provider/receipts` with this `x-receipt-key`, if any.
    async fn receipt(&self, body: &Value, key: Option<&str>) -> (u16, Value);

    /// `POST /api/messages/{id}/retry`.
    async fn retry(&self, id: i64) -> (u16, Value) {
        self.post(&format!("/api/messages/{id}/retry"), &serde_json::json!({}))
            .await
    }
}

impl Api for TestApp {
    /// `GET` a path; returns the status and the JSON body.
    async fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self
            .api
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET");
        let body = response
            .json::<Value>()
            .limit(1 << 22)
            .await
            .unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }

    /// `POST` a JSON body to a path; returns the status and the JSON body.
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut response = self
            .api
            .post(format!("{}{path}", self.address))
            .send_json(body)
            .await
            .expect("POST");
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }

    async fn receipt(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        post_receipt(&self.api, &self.address, body, key).await
    }
}

/// `POST /provider/receipts` on the service at `address`.
pub async fn post_receipt(
    client: &awc::Client,
    address: &str,
    body: &Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = client.post(format!("{address}/provider/receipts"));
    if let Some(key) = key {
        request = request.insert_header(("x-receipt-key", key));
    }
    let mut response = request.send_json(body).await.expect("POST a receipt");
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (response.status().as_u16(), body)
}

/// Inserts messages as any client would, with only phone and content;
/// returns their ids in order.
pub async fn insert_messages(db: &PgPool, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (phone_number, content) VALUES ($1, $2) RETURNING id",
        )
        .bind(format!("+9055500{i:05}"))
        .bind(format!("message {i}"))
        .fetch_one(db)
        .await
        .expect("insert a message");
        ids.push(id);
    }
    ids
}

/// Polls `probe` until it yields a value, for at most ten seconds: for what
/// happens after an event the test cannot await, such as a cache write.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(Duration::from_secs(10), what, probe).await
}

/// [`eventually`] with a deadline of the caller's.
pub async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One claim as an instance in instance scope makes it: up to `limit` due
/// rows, leased for `lease`, claimed by `instance_id`.
pub async fn claim_due(
    db: &PgPool,
    limit: u32,
    lease: Duration,
    instance_id: &str,
) -> Result<Vec<Claim>, sqlx::Error> {
    let policy = ClaimPolicy {
        batch_size: limit,
        lease,
        instance_id: instance_id.into(),
        turn: Turn::EveryTick,
        webhook_url: None,
    };
    repository::claim_due(db, &policy, limit).await
}

/// A mock provider on a random port.
pub fn start_provider(auth_key: Option<&str>) -> MockProvider {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    MockProvider::start(
        listener,
        auth_key.map(str::to_owned),
        Behaviour::accept_all(),
    )
    .expect("mock provider starts")
}

/// A fresh, empty database; migrations run when the service starts.
pub async fn create_database() -> String {
    let server = server_url();
    let name = format!("md_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = PgConnection::connect(&server)
        .await
        .expect("PostgreSQL for the tests");
    connection
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create the test database");
    let (base, _) = server
        .rsplit_once('/')
        .expect("a database URL ends in /<name>");
    format!("{base}/{name}")
}

impl TestApp {
    /// Inserts messages as any client would, with only phone and content;
    /// returns their ids in order.
    pub async fn insert_messages(&self, count: usize) -> Vec<i64> {
        insert_messages(&self.db, count).await
    }

    /// `GET /api/messaging/status` with this `Authorization` header.
    pub async fn status_with_authorization(
        &self,
        authorization: &str,
    ) -> awc::ClientResponse<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>,
    > {
        self.api
            .get(format!("{}/api/messaging/status", self.address))
            .insert_header(("Authorization", authorization))
            .send()
            .await
            .expect("GET")
    }

    /// `GET` a path; the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        let mut response = self
            .api
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET");
        let body = response.body().limit(1 << 22).await.expect("a body");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// `POST` raw bytes as JSON to a path; the status and the JSON body.
    pub async fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let mut response = self
            .api
            .post(format!("{}{path}", self.address))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.to_vec())
            .await
            .expect("POST");
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }

    /// Runs one tick and waits until every message it claimed has its
    /// outcome written.
    pub async fn tick(&self) -> bool {
        let ticked = self.pipeline.tick().await;
        self.pipeline.wait_idle().await;
        ticked
    }

    /// The `Idempotency-Key`s that reached the provider, sorted, repeats
    /// kept: the calls of one batch run concurrently, so their order of
    /// arrival is not the claim's.
    pub fn provider_keys(&self) -> Vec<i64> {
        let mut keys: Vec<i64> = self
            .provider
            .calls()
            .iter()
            .map(|call| {
                call.idempotency_key
                    .as_deref()
                    .and_then(|k| k.parse().ok())
                    .expect("a numeric key")
            })
            .collect();
        keys.sort_unstable();
        keys
    }

    /// `status` of each row, by id.
    pub async fn statuses(&self) -> Vec<(i64, String)> {
        rows(&self.db)
            .await
            .into_iter()
            .map(|row| (row.id, row.status))
            .collect()
    }

    /// The row of one message.
    pub async fn row(&self, id: i64) -> Row {
        row(&self.db, id).await
    }

    /// Every row, by id.
    pub async fn rows(&self) -> Vec<Row> {
        rows(&self.db).await
    }

    /// Stops the service as SIGTERM would and waits until it has exited.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.served.take() {
            Some(served) => served.await.expect("the server task ends"),
            None => Ok(()),
        }
    }
}
