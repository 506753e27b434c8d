//! The command line, run as the real binary: `migrate`, `migrate --check`,
//! `check-config`, `MIGRATE_ON_START=false`, `--version` and `--help`.

use std::process::{Command, Output};

use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::helpers::create_database;
use crate::retention::finished;

/// The binary with `args` and only `vars` in its environment.
fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_message-dispatcher"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("the binary exits, not killed")
}

async fn applied_versions(database_url: &str) -> Vec<i64> {
    let mut db = PgConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&mut db)
        .await
        .unwrap()
}

fn migration_count() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count()
}

#[actix_web::test]
async fn migrate_check_lists_what_is_pending_and_migrate_applies_it_once() {
    let url = create_database().await;
    let env = [("DATABASE_URL", url.as_str()), ("LOG_FORMAT", "json")];
    let check = run(&["migrate", "--check"], &env);
    assert_eq!(code(&check), 3, "{}", text(&check));
    assert!(text(&check).contains("20261129000001 create messages"));
    let mut db = PgConnection::connect(&url).await.unwrap();
    let bookkept: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(!bookkept, "--check changed the database");

    let migrate = run(&["migrate"], &env);
    assert_eq!(code(&migrate), 0, "{}", text(&migrate));
    assert_eq!(applied_versions(&url).await.len(), migration_count());
    // JSON mode is quiet: log lines only, one JSON object each, one per
    // migration applied.
    let lines: Vec<Value> = String::from_utf8_lossy(&migrate.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON log line"))
        .collect();
    let applied = lines.iter().filter(|l| l["message"] == "migration applied");
    assert_eq!(applied.count(), migration_count());
    assert!(migrate.stderr.is_empty(), "{}", text(&migrate));

    for args in [&["migrate", "--check"][..], &["migrate"]] {
        let again = run(args, &env);
        assert_eq!(code(&again), 0, "{args:?}: {}", text(&again));
    }
    assert_eq!(applied_versions(&url).await.len(), migration_count());
}

#[actix_web::test]
async fn migrations_started_together_are_each_applied_once() {
    let url = create_database().await;
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_message-dispatcher"))
                .arg("migrate")
                .env_clear()
                .env("DATABASE_URL", &url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(code(&output), 0, "{}", text(&output));
        applied += text(&output)
            .matches(r#""message":"migration applied""#)
            .count();
    }
    // The advisory lock: whichever process came first applied them all.
    assert_eq!(applied, migration_count());
    assert_eq!(applied_versions(&url).await.len(), migration_count());
}

#[actix_web::test]
async fn migrate_needs_only_the_database_and_fails_clearly_without_it() {
    let missing = run(&["migrate"], &[]);
    assert_eq!(code(&missing), 2);
    assert!(text(&missing).contains("DATABASE_URL is required but not set"));
    let unreachable = run(
        &["migrate", "--check"],
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")],
    );
    assert_eq!(code(&unreachable), 1, "{}", text(&unreachable));
    assert!(text(&unreachable).contains("migrate failed"));
    let malformed = run(&["migrate"], &[("DATABASE_URL", "postgres://h:port/db")]);
    assert_eq!(code(&malformed), 2, "{}", text(&malformed));
    assert!(text(&malformed).contains("configuration error: DATABASE_URL is not a valid"));
    let purge = run(&["purge", "--older-than-days", "30"], &[]);
    assert_eq!(code(&purge), 2);
    assert!(text(&purge).contains("DATABASE_URL is required but not set"));
}

#[actix_web::test]
async fn a_service_told_not_to_migrate_refuses_a_database_with_pending_migrations() {
    let url = create_database().await;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("PROVIDER_URL", "http://127.0.0.1:1/send"),
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("MIGRATE_ON_START", "false"),
    ];
    let refused = run(&[], &env);
    assert_eq!(code(&refused), 3, "{}", text(&refused));
    assert!(text(&refused).contains("MIGRATE_ON_START is false and migrations are pending"));
    assert!(text(&refused).contains("run `message-dispatcher migrate` first"));
    let mut db = PgConnection::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'messages'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(tables, 0, "the service migrated although told not to");
}

#[actix_web::test]
async fn purge_deletes_the_finished_messages_past_the_age_and_nothing_else() {
    let url = create_database().await;
    let env = [("DATABASE_URL", url.as_str())];
    assert_eq!(code(&run(&["migrate"], &env)), 0);
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    for (status, days_ago) in [
        ("sent", 40),
        ("failed", 31),
        ("sent", 29),
        ("failed", 2),
        ("pending", 90),
    ] {
        finished(&db, status, days_ago).await;
    }

    let purge = run(&["purge", "--older-than-days", "30"], &env);
    assert_eq!(code(&purge), 0, "{}", text(&purge));
    let done: Value = String::from_utf8_lossy(&purge.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON log line"))
        .find(|line| line["message"] == "purge done")
        .expect("purge done logged");
    assert_eq!(done["deleted"], 2);
    let left: Vec<(String, String)> =
        sqlx::query_as("SELECT status::text, content FROM messages ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    let statuses: Vec<&str> = left.iter().map(|(status, _)| status.as_str()).collect();
    assert_eq!(statuses, ["sent", "failed", "pending"]);

    let refused = run(&["purge", "--older-than-days", "0"], &env);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
}

#[test]
fn check_config_lists_every_mistake_and_exits_2() {
    let output = run(
        &["check-config"],
        &[
            ("DISPATCH_BATCH_SIZE", "0"),
            ("LOG_FORMAT", "xml"),
            ("WEBHOOK_URL", "ftp://hooks"),
        ],
    );
    assert_eq!(code(&output), 2);
    let printed = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = printed.lines().collect();
    for name in [
        "DATABASE_URL",
        "DISPATCH_BATCH_SIZE",
        "LOG_FORMAT",
        "WEBHOOK_URL",
        "PROVIDER_URL or PROVIDERS_FILE",
    ] {
        let line = format!("configuration error: {name}");
        assert!(
            lines.iter().any(|l| l.starts_with(&line)),
            "{name}: {printed}"
        );
    }
    assert_eq!(lines.len(), 5, "{printed}");
}

#[test]
fn check_config_prints_the_effective_settings_without_secrets() {
    let output = run(
        &["check-config"],
        &[
            ("DATABASE_URL", "postgres://app:db-password-1@db/app"),
            ("PROVIDER_URL", "http://provider/send?token=url-token-1"),
            (
                "WEBHOOK_URL",
                "https://hooks.example.com/sms?sig=hook-token-1",
            ),
            ("PROVIDER_AUTH_KEY", "provider-key-1"),
            ("API_KEY", "api-key-1"),
            ("DISPATCH_BATCH_SIZE", "7"),
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    let printed = text(&output);
    assert!(printed.contains("batch_size: 7"), "{printed}");
    assert!(
        printed.contains("http://provider/send?[redacted]"),
        "{printed}"
    );
    assert!(
        printed.contains("https://hooks.example.com/[redacted]"),
        "{printed}"
    );
    assert!(printed.contains("migrate_on_start: true"), "{printed}");
    for secret in [
        "db-password-1",
        "provider-key-1",
        "api-key-1",
        "url-token-1",
        "hook-token-1",
    ] {
        assert!(!printed.contains(secret), "{secret} printed: {printed}");
    }
    assert!(printed.contains("[redacted]"));
}

#[test]
fn version_names_the_commit_and_help_names_every_command() {
    let version = run(&["--version"], &[]);
    assert_eq!(code(&version), 0);
    let version = text(&version);
    assert!(version.starts_with(concat!("message-dispatcher ", env!("CARGO_PKG_VERSION"))));
    assert!(version.contains("(commit "), "{version}");
    // The commit build.rs found, which the tests were built with too: git's
    // short hash in a checkout.
    let commit = env!("MESSAGE_DISPATCHER_COMMIT");
    assert!(version.contains(&format!("(commit {commit})")), "{version}");
    let checkout = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|output| output.status.success());
    if checkout && std::env::var_os("MESSAGE_DISPATCHER_COMMIT").is_none() {
        let hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(commit.len() == 12 && hex, "{commit}");
    }
    let help = text(&run(&["--help"], &[]));
    for command in ["serve", "migrate", "purge", "check-config"] {
        assert!(help.contains(command), "{command}: {help}");
    }
    let migrate = text(&run(&["migrate", "--help"], &[]));
    assert!(migrate.contains("--check"), "{migrate}");
    let unknown = run(&["deploy"], &[]);
    assert_eq!(code(&unknown), 2);
}

/// `migrate` with `LOG_FORMAT=pretty` on a terminal (a pseudo-terminal from
/// util-linux's `script`) draws its progress bar.
#[actix_web::test]
async fn migrate_on_a_terminal_draws_a_progress_bar() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: util-linux's script is not installed, no terminal to test on");
        return;
    }
    let url = create_database().await;
    let binary = env!("CARGO_BIN_EXE_message-dispatcher");
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("{binary} migrate"))
        .arg("/dev/null")
        .env("DATABASE_URL", &url)
        .env("LOG_FORMAT", "pretty")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    let count = migration_count();
    let drawn = text(&output);
    assert!(
        drawn.contains(&format!("{count}/{count} migrations applied")),
        "{drawn}"
    );
    assert_eq!(applied_versions(&url).await.len(), count);
}
