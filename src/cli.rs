//! The command line: `serve` (the default), `migrate` and `check-config`,
//! described in docs/operations.md#the-command-line.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use envconfig::Envconfig;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::migrate::Migration;

use crate::configuration::{ConfigError, LogFormat, MigrateSettings, Settings};
use crate::migrations::{self, Logged, Progress};
use crate::startup::connect_postgres;
use crate::telemetry;

/// The version and the commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MESSAGE_DISPATCHER_COMMIT"),
    ")"
);

/// Exit status of a configuration that cannot be used.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status of `migrate --check` when migrations are pending.
pub const EXIT_PENDING: u8 = 3;

/// Drains a PostgreSQL table of outgoing SMS messages into HTTP providers
/// at a controlled rate. Every setting is an environment variable
/// (docs/configuration.md).
#[derive(Debug, Parser)]
#[command(name = "message-dispatcher", version = VERSION)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Runs the service: the dispatch pipeline and the HTTP API (the
    /// default when no command is given).
    Serve,
    /// Applies the pending migrations and exits. Reads DATABASE_URL and
    /// LOG_FORMAT only.
    Migrate {
        /// Applies nothing: exits with 0 when the database is up to date and
        /// with 3 when migrations are pending, listing them.
        #[arg(long)]
        check: bool,
    },
    /// Validates the environment and the providers file, prints the
    /// effective settings with secrets redacted, and exits; every mistake
    /// is listed, with exit status 2. Connects to nothing.
    CheckConfig,
}

/// `check-config`.
pub fn check_config() -> ExitCode {
    match Settings::from_env() {
        Ok(settings) => {
            println!("the configuration is valid; the effective settings:\n{settings:#?}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// `migrate` and `migrate --check`.
pub async fn migrate(check: bool) -> ExitCode {
    let settings = match MigrateSettings::init_from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{}", ConfigError::from(error));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(settings.log_format);
    let pool = match connect_postgres(&settings.database).await {
        Ok(pool) => pool,
        Err(error) => return failed(&error),
    };
    let status = match check {
        true => migrations::status(&pool).await,
        false => migrations::apply(&pool, &mut Bar::new(settings.log_format)).await,
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
        Err(error) => failed(&error),
    }
}

fn failed(error: &dyn std::error::Error) -> ExitCode {
    tracing::error!(error = %error, "migrate failed");
    ExitCode::FAILURE
}

/// A progress bar on a terminal, over the log lines of [`Logged`]; hidden
/// in JSON mode and when standard error is not a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new(format: LogFormat) -> Self {
        let bar = match format {
            LogFormat::Json => ProgressBar::hidden(),
            LogFormat::Pretty => ProgressBar::new(0),
        };
        let style =
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} migrations {msg}")
                .expect("the template is valid")
                .progress_chars("=> ");
        Bar(bar.with_style(style))
    }
}

impl Progress for Bar {
    fn start(&mut self, count: usize) {
        self.0.set_length(count as u64);
        self.0.suspend(|| Logged.start(count));
        self.0.enable_steady_tick(Duration::from_millis(100));
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Command>, clap::Error> {
        Cli::try_parse_from(args).map(|cli| cli.command)
    }

    #[test]
    fn no_command_means_serve_and_each_command_parses() {
        assert_eq!(parse(&["message-dispatcher"]).unwrap(), None);
        assert_eq!(parse(&["md", "serve"]).unwrap(), Some(Command::Serve));
        assert_eq!(
            parse(&["md", "migrate"]).unwrap(),
            Some(Command::Migrate { check: false })
        );
        assert_eq!(
            parse(&["md", "migrate", "--check"]).unwrap(),
            Some(Command::Migrate { check: true })
        );
        assert_eq!(
            parse(&["md", "check-config"]).unwrap(),
            Some(Command::CheckConfig)
        );
        assert!(parse(&["md", "migrate", "--force"]).is_err());
        assert!(parse(&["md", "deploy"]).is_err());
        Cli::command().debug_assert();
    }

    #[test]
    fn the_version_names_the_commit() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(VERSION.contains("(commit "));
    }
}
