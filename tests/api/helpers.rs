//! `spawn_app()`: the service on a random port, over a database of its own,
//! with the mock provider on another random port.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use message_dispatcher::configuration::Settings;
use message_dispatcher::mock_provider::{Behaviour, MockProvider};
use message_dispatcher::startup::{Application, Pipeline};
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
    let mut vars: HashMap<String, String> = [
        ("DATABASE_URL", database_url.clone()),
        ("PROVIDER_URL", provider.send_url()),
        ("REDIS_URL", redis_url()),
        ("HTTP_ADDR", "127.0.0.1:0".into()),
        ("DISPATCH_INTERVAL_MS", "3600000".into()),
        ("PROVIDER_TIMEOUT_MS", "5000".into()),
        ("INSTANCE_ID", "test".into()),
        // Most tests drive ticks one by one (`tick()`), which the fleet's
        // shared pace of cluster scope would refuse; tests/api/cluster.rs
        // covers that scope with real processes.
        ("DISPATCH_SCOPE", "instance".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
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
        sqlx::query_as("SELECT id, status FROM messages ORDER BY id")
            .fetch_all(&self.db)
            .await
            .expect("read statuses")
    }

    /// `GET` a path; returns the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
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
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut response = self
            .api
            .post(format!("{}{path}", self.address))
            .send_json(body)
            .await
            .expect("POST");
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (response.status().as_u16(), body)
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
