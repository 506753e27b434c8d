//! Every SQL statement of the service, as plain async functions over a pool,
//! one file per concern.

use std::time::Duration;

use sqlx::PgPool;

mod fleet;
mod messages;
mod pipeline;
mod stats;

pub use fleet::*;
pub use messages::*;
pub use pipeline::*;
pub use stats::*;

/// The longest the pipeline waits for one statement: its statements take
/// milliseconds, so a statement that has not answered by then went into a
/// silent network or a frozen server, and is given up (PostgreSQL's own
/// `statement_timeout`, 30 s, bounds every statement on the server's side).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Gives up on a statement after [`STATEMENT_TIMEOUT`], so that a server that
/// froze or a network that went silent cannot hang the pipeline.
async fn bounded<T>(
    statement: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    bounded_by(STATEMENT_TIMEOUT, statement).await
}

/// Gives up on a statement after `limit`, with an I/O time-out error.
pub async fn bounded_by<T>(
    limit: Duration,
    statement: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(limit, statement).await.map_err(|_| {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from PostgreSQL within {limit:?}"),
        ))
    })?
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Whether PostgreSQL answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
