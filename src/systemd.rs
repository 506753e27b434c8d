//! The supervisor's handshake, systemd's notify protocol (sd_notify(3)):
//! `READY=1` once the listener is bound and the pipeline started,
//! `STOPPING=1` when shutdown begins, and `WATCHDOG=1` from the scheduler's
//! heartbeat when systemd asked for it (`WATCHDOG_USEC`), so that a pipeline
//! whose thread is wedged stops pinging and is restarted. Without
//! `NOTIFY_SOCKET` each call does nothing. docs/operations.md#systemd.

use std::sync::OnceLock;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::pipeline::HEARTBEAT;

/// The listener is bound and the pipeline runs.
pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
    if let Some(interval) = watchdog() {
        let interval_ms = interval.as_millis() as u64;
        tracing::info!(
            interval_ms,
            "systemd watchdog: pinging from the scheduler's heartbeat"
        );
        if interval < 2 * HEARTBEAT {
            tracing::warn!(
                interval_ms,
                "WatchdogSec is shorter than two heartbeats (4 s): a healthy instance may be killed"
            );
        }
    }
}

/// Shutdown began: in-flight sends are being finished.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("draining in-flight sends"),
    ]);
}

/// The pipeline is alive; sent only when systemd's watchdog is on.
pub fn alive() {
    if watchdog().is_some() {
        send(&[NotifyState::Watchdog]);
    }
}

/// The watchdog interval systemd set for this process, read once, as
/// sd_watchdog_enabled(3) does: `WATCHDOG_USEC`, for this process when
/// `WATCHDOG_PID` names one.
pub fn watchdog() -> Option<Duration> {
    static INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();
    *INTERVAL.get_or_init(|| {
        let var = |name| std::env::var(name).ok();
        let usec: u64 = var("WATCHDOG_USEC")?
            .parse()
            .ok()
            .filter(|&usec| usec > 0)?;
        let ours = var("WATCHDOG_PID").is_none_or(|pid| pid == std::process::id().to_string());
        ours.then(|| Duration::from_micros(usec))
    })
}

fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(error = %error, "cannot notify the supervisor (NOTIFY_SOCKET)");
    }
}
