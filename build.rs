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

/// HEAD's short hash; the files git moves at each commit (HEAD, the
/// branches, packed or not) rerun this script. Worktrees have a git
/// directory of their own and share the branches.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| {
        let output = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_owned())
    };
    let own = git(&["rev-parse", "--git-dir"])?;
    let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| own.clone());
    let watched = [
        Path::new(&own).join("HEAD"),
        Path::new(&common).join("refs/heads"),
        Path::new(&common).join("packed-refs"),
    ];
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}
