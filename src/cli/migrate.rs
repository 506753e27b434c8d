//! `message-dispatcher migrate [--check]`.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::ProgressBar;
use sqlx::migrate::Migration;

use super::{connect, failed, progress, EXIT_PENDING};
use crate::configuration::LogFormat;
use crate::migrations::{self, Logged, Progress};

/// `migrate` and `migrate --check`.
pub async fn migrate(check: bool) -> ExitCode {
    let (pool, format) = match connect("migrate").await {
        Ok(connected) => connected,
        Err(status) => return status,
    };
    let status = match check {
        true => migrations::status(&pool).await,
        false => migrations::apply(&pool, &mut Bar::new(format)).await,
    };
    match status {
        Ok(status) if check && !status.pending.is_empty() => {
            tracing::warn!(pending = %status.pending_list(), "migrations are pending");
            ExitCode::from(EXIT_PENDING)
        }
        Ok(status) => {
            let applied = if check { 0 } else { status.pending.len() };
            tracing::info!(applied, unknown = ?status.unknown, "the database is up to date");
            ExitCode::SUCCESS
        }
        Err(error) => failed("migrate", &error),
    }
}

/// A progress bar on a terminal, over the log lines of [`Logged`]; hidden
/// in JSON mode and when standard error is not a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new(format: LogFormat) -> Self {
        let template = "{spinner} [{bar:30}] {pos}/{len} migrations {msg}";
        Bar(progress(format, ProgressBar::new(0), template))
    }
}

impl Progress for Bar {
    fn start(&mut self, count: usize) {
        self.0.set_length(count as u64);
        self.0.suspend(|| Logged.start(count));
    }

    fn applying(&mut self, migration: &Migration) {
        self.0.set_message(migration.description.clone());
    }

    fn applied(&mut self, migration: &Migration, took: Duration) {
        self.0.suspend(|| Logged.applied(migration, took));
        self.0.inc(1);
    }

    fn done(&mut self) {
        self.0.finish_with_message("applied");
    }
}
