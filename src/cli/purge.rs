//! `message-dispatcher purge --older-than-days DAYS`: the retention pass of
//! the service's janitor, run once and reported.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::ProgressBar;

use super::{connect, failed, progress};
use crate::repository;

/// Messages of each outcome one statement deletes, as the janitor does.
const BATCH: u32 = 1000;

/// Deletes the finished messages older than `days`, a batch at a time,
/// until a batch finds none.
pub async fn purge(days: u32) -> ExitCode {
    let (pool, format) = match connect("purge").await {
        Ok(connected) => connected,
        Err(status) => return status,
    };
    let age = Duration::from_secs(u64::from(days) * 86_400);
    // Messages deleted so far and the pace.
    let template = "{spinner} {human_pos} messages deleted ({per_sec})";
    let bar = progress(format, ProgressBar::new_spinner(), template);
    let mut deleted = 0;
    loop {
        match repository::delete_finished(&pool, age, BATCH).await {
            Ok(0) => break,
            Ok(batch) => {
                deleted += batch;
                bar.inc(batch);
            }
            Err(error) => {
                bar.abandon();
                tracing::info!(deleted, "deleted before the failure");
                return failed("purge", &error);
            }
        }
    }
    bar.finish();
    tracing::info!(deleted, older_than_days = days, "purge done");
    ExitCode::SUCCESS
}
