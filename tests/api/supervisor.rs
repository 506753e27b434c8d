//! The service under a supervisor's eyes: systemd's notify protocol on a
//! datagram socket the test owns as `NOTIFY_SOCKET` (READY=1, WATCHDOG=1
//! from the pipeline's heartbeat, STOPPING=1), and the unit file of
//! config/systemd checked by `systemd-analyze verify`.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use message_dispatcher::pipeline::{HEARTBEAT, WEDGE_PIPELINE};

use mock_provider::MockProvider;

use crate::helpers::{create_database, eventually, service_vars, start_provider, Api};
use crate::process::ServiceProcess;

/// A socket in a directory of its own, as systemd gives one.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind() -> Self {
        let dir = std::env::temp_dir().join(format!("notify-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket { socket, path }
    }

    /// The next datagram, waiting at most `limit` for it.
    fn next(&self, limit: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(limit)).unwrap();
        let mut buffer = [0; 4096];
        let read = self.socket.recv(&mut buffer).ok()?;
        Some(String::from_utf8_lossy(&buffer[..read]).into_owned())
    }

    /// Datagrams until one holds `state`, which is returned.
    fn until(&self, state: &str) -> String {
        loop {
            let datagram = self
                .next(Duration::from_secs(30))
                .unwrap_or_else(|| panic!("no {state} from the service"));
            if datagram.lines().any(|line| line == state) {
                return datagram;
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
    }
}

/// The service on a fresh database, told of `notify`; the provider must
/// outlive it.
async fn start(
    notify: &NotifySocket,
    extra: &[(&str, &str)],
) -> (ServiceProcess, String, MockProvider) {
    let provider = start_provider(None);
    let database_url = create_database().await;
    let path = notify.path.to_str().unwrap().to_owned();
    let mut vars = vec![
        ("NOTIFY_SOCKET", path.as_str()),
        ("DISPATCH_INTERVAL_MS", "50"),
    ];
    vars.extend_from_slice(extra);
    let service = ServiceProcess::start(&service_vars(&database_url, &provider, &vars)).await;
    (service, database_url, provider)
}

#[actix_web::test]
async fn ready_comes_once_the_service_serves_and_stopping_when_it_drains() {
    let notify = NotifySocket::bind();
    let (mut service, _, _provider) = start(&notify, &[]).await;
    let ready = notify.until("READY=1");
    assert!(ready.contains("STATUS=serving"), "{ready}");
    assert_eq!(service.get("/readyz").await.0, 200);
    // No watchdog asked for: no ping.
    assert_eq!(notify.next(HEARTBEAT * 2), None);
    service.signal("TERM");
    notify.until("STOPPING=1");
    assert!(service.terminate().await.success());
}

#[actix_web::test]
async fn the_watchdog_is_fed_by_the_pipeline_and_starves_when_it_wedges() {
    let notify = NotifySocket::bind();
    let (mut service, database_url, _provider) =
        start(&notify, &[("WATCHDOG_USEC", "30000000")]).await;
    notify.until("READY=1");
    for _ in 0..2 {
        notify.until("WATCHDOG=1");
    }
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    sqlx::query("INSERT INTO messages (phone_number, content) VALUES ('+15550001', $1)")
        .bind(WEDGE_PIPELINE)
        .execute(&db)
        .await
        .unwrap();
    eventually("the wedging message to be claimed", || {
        let db = db.clone();
        async move {
            let status: String = sqlx::query_scalar("SELECT status FROM messages")
                .fetch_one(&db)
                .await
                .ok()?;
            (status == "sending").then_some(())
        }
    })
    .await;
    // Pings already on their way, then none for three heartbeats, while
    // the HTTP server, on threads of its own, still answers.
    while notify.next(Duration::from_millis(200)).is_some() {}
    assert_eq!(
        notify.next(HEARTBEAT * 3),
        None,
        "a wedged pipeline still pings"
    );
    assert_eq!(service.get("/healthz").await.0, 200);
    service.kill();
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/systemd/message-dispatcher.service"
    );
    // verify wants the binary the unit runs: this build's, in its place.
    let unit = std::fs::read_to_string(source).unwrap().replace(
        "/usr/local/bin/message-dispatcher",
        env!("CARGO_BIN_EXE_message-dispatcher"),
    );
    let dir = std::env::temp_dir().join(format!("unit-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("message-dispatcher.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stderr).into_owned();
    // The sandbox's exposure, 0 (locked down) to 10: at most 2.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(output.status.success(), "{printed}");
    assert!(
        security.status.success(),
        "{}",
        String::from_utf8_lossy(&security.stdout)
    );
    // Warnings do not fail verify: none may be about this unit.
    let ours: Vec<&str> = printed
        .lines()
        .filter(|line| line.contains("message-dispatcher"))
        .collect();
    assert!(ours.is_empty(), "{ours:#?}");
}
