//! The service's command line: read the command, then serve, migrate,
//! purge or check the configuration (src/cli/).

use std::process::ExitCode;

use clap::Parser;
use message_dispatcher::cli::{self, Cli, Command, EXIT_CONFIG, EXIT_PENDING};
use message_dispatcher::configuration::Settings;
use message_dispatcher::error::StartupError;
use message_dispatcher::startup::Application;
use message_dispatcher::telemetry;

#[actix_web::main]
async fn main() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Migrate { check } => cli::migrate(check).await,
        Command::Purge { older_than_days } => cli::purge(older_than_days).await,
        Command::CheckConfig => cli::check_config(),
    }
}

/// Reads the settings, starts logging, builds and runs until a signal.
async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(settings.log_format);
    let application = match Application::build(settings).await {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(error = %error, "could not start");
            return match error {
                StartupError::MigrationsPending(_) => ExitCode::from(EXIT_PENDING),
                _ => ExitCode::FAILURE,
            };
        }
    };
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "server failed");
            ExitCode::FAILURE
        }
    }
}
