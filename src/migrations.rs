//! The schema's migrations (migrations/, built into the binary): which ones
//! a database lacks, and applying them one at a time so that each can be
//! reported. docs/operations.md#upgrades says when each runs.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::migrate::{AppliedMigration, Migrate, MigrateError, Migration, Migrator};
use sqlx::{Connection, PgConnection, PgPool};

/// The migrations of this binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Where a database stands against this binary's migrations.
#[derive(Debug, Default)]
pub struct Status {
    /// Known here and not applied there, oldest first; after [`apply`],
    /// the migrations it applied.
    pub pending: Vec<&'static Migration>,
    /// Applied there and unknown here: a newer binary migrated the database.
    pub unknown: Vec<i64>,
}

/// Told of each step while [`apply`] runs.
pub trait Progress {
    /// `count` migrations are about to be applied.
    fn start(&mut self, count: usize);
    /// `migration` is being applied.
    fn applying(&mut self, _migration: &Migration) {}
    /// `migration` was applied and committed.
    fn applied(&mut self, migration: &Migration, took: Duration);
    /// Every pending migration was applied.
    fn done(&mut self) {}
}

/// The database's status, read without changing anything (not even creating
/// sqlx's bookkeeping table).
#[tracing::instrument(skip_all)]
pub async fn status(pool: &PgPool) -> Result<Status, MigrateError> {
    let mut conn = pool.acquire().await?;
    let bookkept: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    match bookkept {
        true => compare(&applied(&mut conn).await?),
        false => compare(&[]),
    }
}

/// Applies the pending migrations under sqlx's advisory lock, so that
/// instances starting together apply each migration once; each migration
/// runs in a transaction of its own. The connection has no statement
/// time-out (waiting for the lock, or building an index, may take longer
/// than the pool's) but waits at most 10 s for a table's lock, and is
/// closed afterwards, never returned to the pool.
#[tracing::instrument(skip_all)]
pub async fn apply(pool: &PgPool, progress: &mut dyn Progress) -> Result<Status, MigrateError> {
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await?;
    conn.lock().await?;
    // Once the lock is held: a migration waiting for a table behind a long
    // transaction would queue every statement of the fleet on that table
    // behind itself. It fails instead, rolled back, to be run again.
    sqlx::query("SET lock_timeout = '10s'")
        .execute(&mut conn)
        .await?;
    let applied = apply_locked(&mut conn, progress).await;
    // The lock dies with the session anyway: the migration's error comes
    // first.
    let unlocked = conn.unlock().await;
    let _ = conn.close().await;
    let status = applied?;
    unlocked?;
    Ok(status)
}

async fn apply_locked(
    conn: &mut PgConnection,
    progress: &mut dyn Progress,
) -> Result<Status, MigrateError> {
    conn.ensure_migrations_table().await?;
    let status = compare(&applied(conn).await?)?;
    progress.start(status.pending.len());
    for migration in &status.pending {
        progress.applying(migration);
        let took = conn.apply(migration).await?;
        progress.applied(migration, took);
    }
    progress.done();
    Ok(status)
}

/// The migrations applied, refused when one of them failed half-way.
async fn applied(conn: &mut PgConnection) -> Result<Vec<AppliedMigration>, MigrateError> {
    if let Some(version) = conn.dirty_version().await? {
        return Err(MigrateError::Dirty(version));
    }
    conn.list_applied_migrations().await
}

/// This binary's migrations against those `applied`; a migration applied
/// with other contents than this binary's is an error.
fn compare(applied: &[AppliedMigration]) -> Result<Status, MigrateError> {
    let checksums: HashMap<i64, &[u8]> = applied
        .iter()
        .map(|done| (done.version, &*done.checksum))
        .collect();
    let ours = || {
        MIGRATOR
            .iter()
            .filter(|migration| !migration.migration_type.is_down_migration())
    };
    let mut status = Status::default();
    for migration in ours() {
        match checksums.get(&migration.version) {
            Some(checksum) if *checksum != &*migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version))
            }
            Some(_) => {}
            None => status.pending.push(migration),
        }
    }
    status.unknown = applied
        .iter()
        .map(|done| done.version)
        .filter(|version| ours().all(|migration| migration.version != *version))
        .collect();
    Ok(status)
}

/// Progress told to the log, as the service does at start.
pub struct Logged;

impl Progress for Logged {
    fn start(&mut self, count: usize) {
        if count > 0 {
            tracing::info!(count, "applying migrations");
        }
    }

    fn applied(&mut self, migration: &Migration, took: Duration) {
        tracing::info!(
            version = migration.version,
            description = %migration.description,
            took_ms = took.as_millis() as u64,
            "migration applied"
        );
    }
}

impl Status {
    /// `20261204000006 retention, ...`: the pending migrations, for a message.
    pub fn pending_list(&self) -> String {
        let names: Vec<String> = self
            .pending
            .iter()
            .map(|migration| format!("{} {}", migration.version, migration.description))
            .collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(migration: &Migration) -> AppliedMigration {
        AppliedMigration {
            version: migration.version,
            checksum: migration.checksum.clone(),
        }
    }

    #[test]
    fn a_fresh_database_lacks_every_migration() {
        let status = compare(&[]).unwrap();
        assert_eq!(status.pending.len(), MIGRATOR.iter().count());
        assert!(status.unknown.is_empty());
        assert!(status
            .pending_list()
            .starts_with("20261129000001 create messages"));
    }

    #[test]
    fn applied_migrations_are_not_pending_and_newer_ones_are_unknown() {
        let mut applied: Vec<AppliedMigration> = MIGRATOR.iter().map(done).collect();
        let last = applied.pop().unwrap();
        applied.push(AppliedMigration {
            version: 29991231000000,
            checksum: last.checksum.clone(),
        });
        let status = compare(&applied).unwrap();
        assert_eq!(status.pending.len(), 1);
        assert_eq!(status.pending[0].version, last.version);
        assert_eq!(status.unknown, [29991231000000]);
    }

    #[test]
    fn a_migration_changed_after_it_was_applied_is_an_error() {
        let mut applied: Vec<AppliedMigration> = MIGRATOR.iter().map(done).collect();
        applied[0].checksum = vec![0; 48].into();
        let error = compare(&applied).unwrap_err();
        assert!(matches!(
            error,
            MigrateError::VersionMismatch(20261129000001)
        ));
    }
}
