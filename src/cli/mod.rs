//! The command line: `serve` (the default), `migrate`, `purge` and
//! `check-config`, described in docs/operations.md#the-command-line.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;

use crate::configuration::{LogFormat, Settings, ToolSettings};
use crate::startup::connect_postgres;
use crate::telemetry;

mod migrate;
mod purge;

pub use migrate::migrate;
pub use purge::purge;

/// The version and the commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MESSAGE_DISPATCHER_COMMIT"),
    ")"
);

/// Exit status of a configuration that cannot be used.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when migrations are pending: `migrate --check` found some,
/// or `serve` with `MIGRATE_ON_START=false` refused to start.
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
    /// Deletes the finished messages older than DAYS, as RETENTION_DAYS does
    /// in the service, and exits: the first pass over a large table, as a
    /// step of its own. Reads DATABASE_URL and LOG_FORMAT only.
    Purge {
        /// Sent messages sent, and failed ones failed, more than this many
        /// days ago (1 to 36500).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
        older_than_days: u32,
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

/// The database and the log format of the one-off `command` (`migrate`,
/// `purge`), logging started; the exit status when they cannot be had.
async fn connect(command: &str) -> Result<(PgPool, LogFormat), ExitCode> {
    let settings = ToolSettings::from_env().map_err(|error| {
        eprintln!("{error}");
        ExitCode::from(EXIT_CONFIG)
    })?;
    telemetry::init(settings.log_format);
    let pool = connect_postgres(&settings.database)
        .await
        .map_err(|error| failed(command, &error))?;
    Ok((pool, settings.log_format))
}

/// A progress display on a terminal: `shown` in the style of `template`,
/// ticking; hidden in JSON mode (and by indicatif when standard error is
/// not a terminal).
fn progress(format: LogFormat, shown: ProgressBar, template: &str) -> ProgressBar {
    if format == LogFormat::Json {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(template)
        .expect("the template is a constant")
        .progress_chars("=> ");
    shown.enable_steady_tick(Duration::from_millis(100));
    shown.with_style(style)
}

/// Logs why `command` failed; exit status 1.
fn failed(command: &str, error: &dyn std::error::Error) -> ExitCode {
    tracing::error!(error = %error, "{command} failed");
    ExitCode::FAILURE
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
        assert_eq!(
            parse(&["md", "purge", "--older-than-days", "30"]).unwrap(),
            Some(Command::Purge {
                older_than_days: 30
            })
        );
        assert!(parse(&["md", "purge"]).is_err());
        assert!(parse(&["md", "purge", "--older-than-days", "0"]).is_err());
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
