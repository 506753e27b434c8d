//! The mock provider binary: see `message_dispatcher::mock_provider`.

use std::process::ExitCode;

use message_dispatcher::configuration::LogFormat;
use message_dispatcher::mock_provider::{self, MockSettings};
use message_dispatcher::telemetry;

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match MockSettings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(LogFormat::Pretty);
    match mock_provider::run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mock-provider: {error}");
            ExitCode::FAILURE
        }
    }
}
