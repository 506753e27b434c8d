//! The real binaries and servers, as processes a test starts, kills and
//! restarts: the service, a private Redis and a private PostgreSQL cluster.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::helpers::{eventually, eventually_within, Api};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// `target/debug/message-dispatcher`, running.
pub struct ServiceProcess {
    child: Child,
    pub address: String,
    /// Every line it wrote, stdout and stderr: JSON log lines as objects.
    logs: Arc<Mutex<Vec<Value>>>,
    /// The threads that read its stdout and stderr into `logs`, until the
    /// process exits.
    readers: Vec<std::thread::JoinHandle<()>>,
    /// The secrets it was given, none of which may appear in a line.
    secrets: Vec<String>,
    api_key: String,
}

/// A secret no log line could hold by chance.
fn secret(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

/// `url` with a password, unless it has one: PostgreSQL with trust
/// authentication never asks for it, and the service must still never
/// print it.
fn with_password(url: &str, password: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if !rest.split('/').next().unwrap_or("").contains('@') => {
            format!("{scheme}://postgres:{password}@{rest}")
        }
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) if !user.contains(':') => {
                format!("{scheme}://{user}:{password}@{host}")
            }
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl ServiceProcess {
    /// Starts the binary with these variables (on top of JSON logs, a random
    /// port, and secrets of its own for `API_KEY`, `PROVIDER_AUTH_KEY` and
    /// the password of `DATABASE_URL` unless the test sets them) and waits
    /// until it listens.
    pub async fn start(vars: &[(String, String)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_message-dispatcher"));
        let (api_key, provider_key) = (secret("api-key"), secret("provider-key"));
        command
            .env_clear()
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("API_KEY", &api_key)
            .env("PROVIDER_AUTH_KEY", &provider_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut secrets = vec![api_key.clone(), provider_key];
        let db_password = secret("db-password");
        for (name, value) in vars {
            if name == "DATABASE_URL" {
                let url = with_password(value, &db_password);
                if url != *value {
                    secrets.push(db_password.clone());
                }
                command.env(name, url);
            } else {
                command.env(name, value);
            }
        }
        for (name, value) in vars {
            // Every *_KEY: API_KEY, PROVIDER_AUTH_KEY, RECEIPT_AUTH_KEY and
            // the keys a providers file names.
            if (["REDIS_URL", "WEBHOOK_SECRET"].contains(&name.as_str()) || name.ends_with("_KEY"))
                && !value.is_empty()
            {
                secrets.push(value.clone());
            }
        }
        let api_key = vars
            .iter()
            .find(|(name, _)| name == "API_KEY")
            .map_or(api_key, |(_, value)| value.clone());
        let mut child = command.spawn().expect("the service binary starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let readers = [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ]
        .into_iter()
        .map(|output| {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    let entry = serde_json::from_str(&line).unwrap_or(Value::String(line));
                    logs.lock().unwrap().push(entry);
                }
            })
        })
        .collect();
        let port = eventually("the service to listen", || {
            let logs = logs.clone();
            async move {
                let logs = logs.lock().unwrap();
                logs.iter()
                    .find(|entry| entry["message"] == "listening")
                    .and_then(|entry| entry["port"].as_u64())
            }
        })
        .await;
        ServiceProcess {
            child,
            address: format!("http://127.0.0.1:{port}"),
            logs,
            readers,
            secrets,
            api_key,
        }
    }

    /// Panics on the first line that holds one of its secrets.
    pub fn assert_no_secret_logged(&self) {
        let logs = self.logs.lock().unwrap();
        for entry in logs.iter() {
            let line = entry.to_string();
            for secret in &self.secrets {
                assert!(
                    !line.contains(secret.as_str()),
                    "a secret in a log line of {}: {line}",
                    self.address
                );
            }
        }
    }

    fn authorization(&self) -> (&'static str, String) {
        ("Authorization", format!("Bearer {}", self.api_key))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Log lines whose message contains `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .filter(|entry| {
                entry["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
            })
            .count()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.read_to_the_end();
    }

    /// Once the process has exited: waits until every line it wrote is in
    /// `logs`.
    fn read_to_the_end(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// SIGSTOP: the process freezes, its sockets open, as in a long pause.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// SIGCONT: the process goes on where it stopped.
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.terminate_within(std::time::Duration::from_secs(10))
            .await
    }

    /// SIGTERM, then waits for the exit, for at most `limit`.
    pub async fn terminate_within(&mut self, limit: std::time::Duration) -> ExitStatus {
        self.signal("TERM");
        let child = &mut self.child;
        let status = eventually_within(limit, "the service to exit", || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        })
        .await;
        self.read_to_the_end();
        status
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// `GET` a path with the API key.
    async fn fetch(
        &self,
        path: &str,
    ) -> awc::ClientResponse<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>,
    > {
        awc::Client::default()
            .get(format!("{}{path}", self.address))
            .insert_header(self.authorization())
            .send()
            .await
            .expect("GET")
    }

    /// `GET` a path; the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        let mut response = self.fetch(path).await;
        let body = response.body().limit(1 << 22).await.expect("a body");
        String::from_utf8_lossy(&body).into_owned()
    }
}

impl Api for ServiceProcess {
    /// `GET` a path; the status, and the JSON body.
    async fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self.fetch(path).await;
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut response = awc::Client::default()
            .post(format!("{}{path}", self.address))
            .insert_header(self.authorization())
            .send_json(body)
            .await
            .expect("POST");
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (response.status().as_u16(), body)
    }

    async fn receipt(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        crate::helpers::post_receipt(&awc::Client::default(), &self.address, body, key).await
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- log of the service at {} ---", self.address);
            for entry in self.logs.lock().unwrap().iter() {
                eprintln!("{entry}");
            }
        } else {
            // Whatever the test did to it, no line may hold a secret.
            self.assert_no_secret_logged();
        }
    }
}

/// A Redis server of the test's own, on a free port.
pub struct PrivateRedis {
    pub port: u16,
    /// `requirepass`: the service must never print it.
    password: String,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts it and waits until it answers.
    pub async fn start() -> Self {
        let mut redis = PrivateRedis {
            port: free_port(),
            password: secret("redis-password"),
            child: None,
        };
        redis.restart().await;
        redis
    }

    /// Its URL, with its password.
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                &self.password,
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let port = self.port;
        eventually("Redis to listen", || async move {
            port_open(port).then_some(())
        })
        .await;
    }

    /// Kills it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster of the test's own, from the installed binaries, on a
/// free port, so that a test can stop and start it.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    pg_ctl: PathBuf,
}

fn pg_binary(name: &str) -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin").join(name))
        .collect();
    candidates.sort();
    candidates.reverse();
    candidates.extend(
        ["/usr/local/bin", "/usr/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(name)),
    );
    candidates
        .into_iter()
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("{name} not found: install PostgreSQL's server package (Debian: postgresql)")
        })
}

/// A server program, which PostgreSQL refuses to run as root.
fn as_server_user(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PrivatePostgres {
    /// Creates and starts a cluster with trust authentication.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("md-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .status();
        let initdb = as_server_user(&pg_binary("initdb"))
            .arg("-D")
            .arg(&dir)
            .args(["-U", "postgres", "--auth=trust", "-N"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb");
        let postgres = PrivatePostgres {
            port: free_port(),
            dir,
            pg_ctl: pg_binary("pg_ctl"),
        };
        postgres.resume().await;
        postgres
    }

    /// A URL to its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts it (again).
    pub async fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let status = as_server_user(&self.pg_ctl)
            .arg("-D")
            .arg(&self.dir)
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("server.log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl start");
    }

    /// Stops it at once, as a crash or a network cut would.
    pub fn halt(&self) {
        let _ = as_server_user(&self.pg_ctl)
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.halt();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
