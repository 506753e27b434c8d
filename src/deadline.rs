//! The one time-out rule: every call that leaves the process (a statement,
//! a Redis command, a provider call) is bounded, and a bound that passes is
//! an error of the caller's own kind, so that it is handled like any other
//! failure of that call. The bounds themselves are named where the calls
//! are: [`crate::repository::STATEMENT_TIMEOUT`], the Redis `CALL_TIMEOUT`,
//! `PROVIDER_TIMEOUT_MS`, and the shorter ones of the status answers.

use std::future::Future;
use std::time::Duration;

/// A call that did not finish within its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, derive_more::Display, derive_more::Error)]
#[display("no answer within {_0:?}")]
pub struct TimedOut(#[error(not(source))] pub Duration);

/// Runs `call` for at most `limit`; past it, the call is dropped (cancelled)
/// and the answer is `E::from(TimedOut(limit))`.
pub async fn within<T, E: From<TimedOut>>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| E::from(TimedOut(limit)))?
}

/// A statement's time-out is an I/O error to sqlx, as a lost connection is.
impl From<TimedOut> for sqlx::Error {
    fn from(timed_out: TimedOut) -> Self {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from PostgreSQL within {:?}", timed_out.0),
        ))
    }
}
