//! A provider that speaks the SPEC's protocol on `POST /send`, for local
//! runs, tests and benchmarks: it accepts (or fails, on demand), answers the
//! same `messageId` for a repeated `Idempotency-Key`, and tells what it saw
//! on `GET /stats` and `GET /calls`. It can post delivery receipts back,
//! and `POST /hooks` is a webhook sink for benchmarks.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, App, HttpRequest, HttpResponse, HttpServer};
use envconfig::Envconfig;

use serde::{Deserialize, Serialize};

/// `MOCK_AUTH_KEY`, never printed by a Debug of the settings.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// The mock's settings, from `MOCK_*` variables.
#[derive(Envconfig, Debug, Clone)]
pub struct MockSettings {
    #[envconfig(from = "MOCK_ADDR", default = "127.0.0.1:9090")]
    pub addr: SocketAddr,
    /// Unset: no check; set: 401 without the right `x-ins-auth-key`.
    #[envconfig(from = "MOCK_AUTH_KEY")]
    pub auth_key: Option<Secret>,
    #[envconfig(from = "MOCK_LATENCY_MS", default = "0")]
    pub latency_ms: u64,
    #[envconfig(from = "MOCK_FAILURE_RATE", default = "0")]
    pub failure_rate: f64,
    #[envconfig(from = "MOCK_FAILURE_STATUS", default = "500")]
    pub failure_status: u16,
    /// Set: every accepted message gets a delivery receipt posted here.
    #[envconfig(from = "MOCK_RECEIPT_URL")]
    pub receipt_url: Option<String>,
    /// Sent in `x-receipt-key` with every receipt.
    #[envconfig(from = "MOCK_RECEIPT_KEY")]
    pub receipt_key: Option<Secret>,
    #[envconfig(from = "MOCK_RECEIPT_DELAY_MS", default = "1000")]
    pub receipt_delay_ms: u64,
    /// Share of receipts that say `undelivered`, 0.0 to 1.0.
    #[envconfig(from = "MOCK_UNDELIVERED_RATE", default = "0")]
    pub undelivered_rate: f64,
}

impl MockSettings {
    /// Reads and checks the `MOCK_*` variables.
    pub fn from_env() -> Result<Self, String> {
        let settings = Self::init_from_env().map_err(|e| format!("configuration error: {e}"))?;
        settings.behaviour().map(|_| settings)
    }

    /// The behaviour these settings describe, or why it is not valid.
    pub fn behaviour(&self) -> Result<Behaviour, String> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(
                "configuration error: MOCK_FAILURE_RATE must be between 0.0 and 1.0".into(),
            );
        }
        let failure_status = StatusCode::from_u16(self.failure_status).map_err(|_| {
            "configuration error: MOCK_FAILURE_STATUS must be an HTTP status".to_owned()
        })?;
        if !(0.0..=1.0).contains(&self.undelivered_rate) {
            return Err(
                "configuration error: MOCK_UNDELIVERED_RATE must be between 0.0 and 1.0".into(),
            );
        }
        let receipts = self.receipt_url.as_ref().map(|url| Receipts {
            url: url.clone(),
            key: self.receipt_key.as_ref().map(|key| key.expose().to_owned()),
            delay: Duration::from_millis(self.receipt_delay_ms),
            undelivered_rate: self.undelivered_rate,
            before_answer: false,
        });
        Ok(Behaviour {
            latency: Duration::from_millis(self.latency_ms),
            failure_rate: self.failure_rate,
            failure_status,
            receipts,
            ..Behaviour::accept_all()
        })
    }
}

/// How the mock answers; tests may change it while it runs.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub latency: Duration,
    /// Share of calls answered with `failure_status`, 0.0 to 1.0.
    pub failure_rate: f64,
    pub failure_status: StatusCode,
    /// Sent as `Retry-After` with every failure.
    pub retry_after_secs: Option<u64>,
    /// When set, every authorised call gets this status and raw body (for
    /// answers a real provider should never give); never counted accepted.
    pub canned: Option<(StatusCode, String)>,
    /// When set, every accepted call is followed by a delivery receipt.
    pub receipts: Option<Receipts>,
}

/// How the mock reports deliveries.
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Where receipts are posted (the service's `/provider/receipts`).
    pub url: String,
    /// Sent in `x-receipt-key`.
    pub key: Option<String>,
    /// How long after accepting a message its receipt is posted.
    pub delay: Duration,
    /// Share of receipts that say `undelivered`.
    pub undelivered_rate: f64,
    /// Post the receipt, and wait for its answer, before answering the send:
    /// the receipt reaches the service before the send's outcome.
    pub before_answer: bool,
}

/// One receipt the mock posted, and the status it was answered.
#[derive(Debug, Clone, Serialize)]
pub struct PostedReceipt {
    pub message_id: String,
    pub status: String,
    /// The HTTP status of the answer; 0 when there was none.
    pub answered: u16,
}

/// One call to `POST /send`, as received.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedCall {
    pub idempotency_key: Option<String>,
    /// Kept for tests in the same process; never served by `GET /calls`.
    #[serde(skip)]
    pub auth_key: Option<String>,
    pub to: String,
    pub content: String,
    /// Milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    pub status: u16,
    /// The `messageId` answered, when accepted.
    pub message_id: Option<String>,
}

/// The counts of `GET /stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every call to `POST /send`.
    pub calls: u64,
    /// Calls answered 2xx.
    pub accepted: u64,
    /// Distinct `Idempotency-Key`s among the accepted calls.
    pub distinct_keys: u64,
    /// Requests to `POST /hooks`, the webhook sink.
    pub hooks: u64,
}

#[derive(Default)]
struct Ledger {
    message_ids: HashMap<String, String>,
    calls: Vec<ReceivedCall>,
    accepted: u64,
    receipts: Vec<PostedReceipt>,
    hooks: u64,
}

struct Shared {
    auth_key: Option<String>,
    behaviour: Mutex<Behaviour>,
    ledger: Mutex<Ledger>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the mock down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Deserialize)]
struct SendBody {
    to: String,
    content: String,
}

#[post("/send")]
async fn send(request: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (idempotency_key, auth_key) = (header("idempotency-key"), header("x-ins-auth-key"));
    let behaviour = lock(&shared.behaviour).clone();
    let parsed = serde_json::from_slice::<SendBody>(&body);
    let refusal = if shared.auth_key.is_some() && auth_key != shared.auth_key {
        Some((
            StatusCode::UNAUTHORIZED,
            r#"{"error":"unauthorized"}"#.to_owned(),
        ))
    } else if parsed.is_err() {
        Some((
            StatusCode::BAD_REQUEST,
            r#"{"error":"body must be {\"to\", \"content\"}"}"#.to_owned(),
        ))
    } else if let Some(canned) = &behaviour.canned {
        Some(canned.clone())
    } else if behaviour.failure_rate > 0.0 && fastrand::f64() < behaviour.failure_rate {
        Some((
            behaviour.failure_status,
            r#"{"error":"injected failure"}"#.to_owned(),
        ))
    } else {
        None
    };
    let (to, content) = parsed.map(|b| (b.to, b.content)).unwrap_or_default();
    let (status, answer) = {
        let mut ledger = lock(&shared.ledger);
        let (status, answer, message_id) = match refusal {
            Some((status, answer)) => (status, answer, None),
            None => {
                ledger.accepted += 1;
                let message_id = match &idempotency_key {
                    Some(key) => ledger
                        .message_ids
                        .entry(key.clone())
                        .or_insert_with(|| uuid::Uuid::new_v4().to_string())
                        .clone(),
                    None => uuid::Uuid::new_v4().to_string(),
                };
                let answer = serde_json::json!({ "message": "Accepted", "messageId": message_id });
                (StatusCode::ACCEPTED, answer.to_string(), Some(message_id))
            }
        };
        ledger.calls.push(ReceivedCall {
            idempotency_key,
            auth_key,
            to,
            content,
            received_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            status: status.as_u16(),
            message_id,
        });
        (status, answer)
    };
    if let (Some(plan), Some(message_id)) = (&behaviour.receipts, accepted_id(&answer, status)) {
        let posting = post_receipt(shared.clone(), plan.clone(), message_id);
        if plan.before_answer {
            posting.await;
        } else {
            actix_rt::spawn(posting);
        }
    }
    if !behaviour.latency.is_zero() {
        actix_rt::time::sleep(behaviour.latency).await;
    }
    let mut response = HttpResponse::build(status);
    if let (Some(seconds), false) = (behaviour.retry_after_secs, status.is_success()) {
        response.insert_header(("Retry-After", seconds.to_string()));
    }
    response.content_type("application/json").body(answer)
}

/// The `messageId` of an accepting answer.
fn accepted_id(answer: &str, status: StatusCode) -> Option<String> {
    if !status.is_success() {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(answer).ok()?;
    answer["messageId"].as_str().map(str::to_owned)
}

thread_local! {
    /// One client per worker thread, so that receipts reuse connections.
    static RECEIPT_CLIENT: awc::Client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
}

/// After the plan's delay, posts the receipt of `message_id`.
async fn post_receipt(shared: web::Data<Shared>, plan: Receipts, message_id: String) {
    actix_rt::time::sleep(plan.delay).await;
    let delivered = plan.undelivered_rate == 0.0 || fastrand::f64() >= plan.undelivered_rate;
    let body = if delivered {
        serde_json::json!({ "messageId": message_id, "status": "delivered", "at": now_rfc3339() })
    } else {
        serde_json::json!({
            "messageId": message_id, "status": "undelivered",
            "error": "handset unreachable", "at": now_rfc3339()
        })
    };
    let client = RECEIPT_CLIENT.with(Clone::clone);
    // As providers do, try again while the service does not take it: five
    // times, waiting half a second, then one, two and four.
    let mut answered = 0;
    let mut wait = Duration::from_millis(500);
    for _ in 0..5 {
        let mut request = client.post(&plan.url);
        if let Some(key) = &plan.key {
            request = request.insert_header(("x-receipt-key", key.as_str()));
        }
        answered = match request.send_json(&body).await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        if (200..300).contains(&answered) {
            break;
        }
        actix_rt::time::sleep(wait).await;
        wait *= 2;
    }
    lock(&shared.ledger).receipts.push(PostedReceipt {
        message_id,
        status: body["status"].as_str().unwrap_or_default().to_owned(),
        answered,
    });
}

/// Now, as RFC 3339 in UTC with microseconds.
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A webhook sink for benchmarks: takes any event, answers 204, counts it.
#[post("/hooks")]
async fn hooks(_event: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    lock(&shared.ledger).hooks += 1;
    HttpResponse::NoContent().finish()
}

#[get("/stats")]
async fn stats(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.stats())
}

#[get("/calls")]
async fn calls(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(&lock(&shared.ledger).calls)
}

impl Shared {
    fn stats(&self) -> Stats {
        let ledger = lock(&self.ledger);
        Stats {
            calls: ledger.calls.len() as u64,
            accepted: ledger.accepted,
            distinct_keys: ledger.message_ids.len() as u64,
            hooks: ledger.hooks,
        }
    }
}

/// A running mock provider.
pub struct MockProvider {
    addr: SocketAddr,
    shared: web::Data<Shared>,
    handle: ServerHandle,
}

impl MockProvider {
    /// Binds `listener` and serves on the current actix system.
    pub fn start(
        listener: TcpListener,
        auth_key: Option<String>,
        behaviour: Behaviour,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = web::Data::new(Shared {
            auth_key,
            behaviour: Mutex::new(behaviour),
            ledger: Mutex::new(Ledger::default()),
        });
        let server = HttpServer::new({
            let shared = shared.clone();
            move || {
                App::new()
                    .app_data(shared.clone())
                    .service(send)
                    .service(stats)
                    .service(calls)
                    .service(hooks)
            }
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(1)
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(MockProvider {
            addr,
            shared,
            handle,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `POST /send`.
    pub fn send_url(&self) -> String {
        format!("http://{}/send", self.addr)
    }

    /// Changes how it answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// What `GET /stats` answers.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Every receipt posted so far, in the order their posting ended.
    pub fn receipts(&self) -> Vec<PostedReceipt> {
        lock(&self.shared.ledger).receipts.clone()
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<ReceivedCall> {
        lock(&self.shared.ledger).calls.clone()
    }

    /// Stops serving.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

impl Behaviour {
    /// Accept every call at once.
    pub fn accept_all() -> Self {
        Behaviour {
            latency: Duration::ZERO,
            failure_rate: 0.0,
            failure_status: StatusCode::INTERNAL_SERVER_ERROR,
            retry_after_secs: None,
            canned: None,
            receipts: None,
        }
    }

    /// Answer every call with `status`.
    pub fn failing(status: StatusCode) -> Self {
        Behaviour {
            failure_rate: 1.0,
            failure_status: status,
            ..Behaviour::accept_all()
        }
    }

    /// Accept every call, each after `latency`.
    pub fn slow(latency: Duration) -> Self {
        Behaviour {
            latency,
            ..Behaviour::accept_all()
        }
    }
}

/// Serves the mock on `settings.addr` until SIGINT or SIGTERM.
pub async fn run(settings: MockSettings) -> std::io::Result<()> {
    let behaviour = settings
        .behaviour()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(settings.addr)?;
    let auth_key = settings.auth_key.map(|key| key.expose().to_owned());
    let mock = MockProvider::start(listener, auth_key, behaviour)?;
    tracing::info!(addr = %mock.addr(), "mock provider listening on POST /send");
    shutdown_signal().await;
    mock.stop().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => terminate.recv().await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
