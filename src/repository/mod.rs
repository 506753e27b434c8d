//! Every SQL statement of the service, as plain async functions over a pool,
//! one file per concern. Rows come back as plain structs or domain values
//! (`Claim`, `MessageStatus`); nothing here knows of actors or HTTP.

use std::time::Duration;

use sqlx::PgPool;

mod attempts;
mod claims;
mod enqueue;
mod fleet;
mod lanes;
mod messages;
mod outcomes;
mod providers;
mod receipts;
mod retention;
mod stats;
mod suppressions;
mod webhooks;

pub use attempts::*;
pub use claims::*;
pub use enqueue::*;
pub use fleet::*;
pub use lanes::*;
pub use messages::*;
pub use outcomes::*;
pub use providers::*;
pub use receipts::*;
pub use retention::*;
pub use stats::*;
pub use suppressions::*;
pub use webhooks::*;

/// The longest the pipeline waits for one statement: its statements take
/// milliseconds, so a statement that has not answered by then went into a
/// silent network or a frozen server, and is given up (PostgreSQL's own
/// `statement_timeout`, 30 s, bounds every statement on the server's side).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Gives up on a statement after [`STATEMENT_TIMEOUT`], so that a server that
/// froze or a network that went silent cannot hang the pipeline. Every
/// function of this module is bounded by it; a caller that must answer
/// sooner bounds the call again, shorter, with [`crate::deadline::within`].
async fn bounded<T>(
    statement: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    crate::deadline::within(STATEMENT_TIMEOUT, statement).await
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Whether PostgreSQL answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    bounded(sqlx::query("SELECT 1").execute(pool))
        .await
        .map(|_| ())
}
