//! Names the commit the binary is built from, for `--version`:
//! `MESSAGE_DISPATCHER_COMMIT` when set (a build without the repository,
//! such as docker/Dockerfile's), else git's, else "unknown".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MESSAGE_DISPATCHER_COMMIT");
    let commit = std::env::var("MESSAGE_DISPATCHER_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MESSAGE_DISPATCHER_COMMIT={commit}");
}

/// HEAD's short hash; the files git moves at each commit (HEAD, the refs,
/// packed or not) rerun this script.
fn git_commit() -> Option<String> {
    if !Path::new(".git/HEAD").is_file() {
        return None;
    }
    for moved in [".git/HEAD", ".git/refs", ".git/packed-refs"] {
        if Path::new(moved).exists() {
            println!("cargo:rerun-if-changed={moved}");
        }
    }
    let output = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?;
    output.status.success().then(|| commit.trim().to_owned())
}
