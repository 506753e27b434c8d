//! The rules of docs/architecture.md, checked against the source: which
//! folder may import which, and how long a file may grow.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code of a file, its unit tests left out.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(tests) => text[..tests].to_owned(),
        None => text,
    }
}

/// Every file of `folder` that names one of `forbidden`.
fn breaches(folder: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for path in sources(&src().join(folder)) {
        let code = code(&path);
        for name in forbidden {
            if code.contains(name) {
                found.push(format!("{} names {name}", path.display()));
            }
        }
    }
    found
}

#[test]
fn every_dependency_points_one_way() {
    let ours = [
        "crate::pipeline",
        "crate::repository",
        "crate::provider",
        "crate::routes",
        "crate::redis",
        "crate::webhook",
        "crate::configuration",
        "crate::startup",
    ];
    let mut found = breaches("domain", &ours);
    found.extend(breaches(
        "repository",
        &[
            "crate::pipeline",
            "crate::routes",
            "crate::provider",
            "actix",
        ],
    ));
    found.extend(breaches(
        "provider",
        &[
            "crate::pipeline",
            "crate::repository",
            "crate::routes",
            "sqlx",
            "actix::",
        ],
    ));
    found.extend(breaches(
        "webhook",
        &[
            "crate::pipeline",
            "crate::repository",
            "crate::routes",
            "sqlx",
            "actix::",
        ],
    ));
    found.extend(breaches("pipeline", &["crate::routes", "actix_web"]));
    found.extend(breaches("routes", &["crate::provider"]));
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn no_source_file_is_over_250_lines_tests_aside() {
    let long: Vec<String> = sources(&src())
        .into_iter()
        .map(|path| (code(&path).lines().count(), path))
        .filter(|(lines, _)| *lines > 250)
        .map(|(lines, path)| format!("{}: {lines} lines", path.display()))
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}
