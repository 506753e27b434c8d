//! The files no engine runs here (docker/, config/systemd), held to the
//! code: every file they copy or mount exists, every command they run is
//! one the binary takes, every variable they set is one it reads. The
//! linters of scripts/test check their syntax; this checks their sense.

use std::path::Path;

use clap::Parser;
use message_dispatcher::cli::Cli;

use crate::config_docs::{read, variables};

fn exists(path: &str) -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).exists()
}

#[test]
fn the_dockerfile_and_the_compose_file_name_files_that_exist() {
    let dockerfile = read("docker/Dockerfile");
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|line| !line.starts_with("--from"))
        .flat_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    assert!(copied.contains(&"build.rs"), "{copied:?}");
    for source in copied {
        assert!(
            exists(source),
            "docker/Dockerfile copies {source}, which is gone"
        );
    }
    let compose = read("docker/docker-compose.yml");
    let mounted: Vec<&str> = compose
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- ../"))
        .filter_map(|line| line.split(':').next())
        .collect();
    assert!(mounted.len() >= 3, "{mounted:?}");
    for source in mounted {
        assert!(
            exists(source),
            "docker-compose.yml mounts {source}, which is gone"
        );
    }
}

/// The command lines `text` runs the binary with, as `args:` lists or
/// after the binary's path.
fn commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(list) = line.strip_prefix("args: [") {
                let words = list.trim_end_matches(']').split(',');
                return Some(
                    words
                        .map(|w| w.trim().trim_matches('"').to_owned())
                        .collect(),
                );
            }
            let (_, args) = line.split_once("bin/message-dispatcher")?;
            Some(args.split_whitespace().map(str::to_owned).collect())
        })
        .collect()
}

#[test]
fn every_command_the_deployments_run_is_one_the_binary_takes() {
    let mut found = 0;
    for file in [
        "config/systemd/message-dispatcher.service",
        "docker/kubernetes/message-dispatcher.yaml",
    ] {
        for args in commands(&read(file)) {
            let line = std::iter::once("message-dispatcher".to_owned()).chain(args.clone());
            assert!(Cli::try_parse_from(line).is_ok(), "{file} runs {args:?}");
            found += 1;
        }
    }
    assert!(found >= 3, "{found}");
}

/// `NAME` of `- name: NAME`, `key: NAME`, `--from-literal=NAME=` and of
/// `NAME: value` under the compose file's dispatcher and mock-provider.
fn set_variables(text: &str) -> Vec<String> {
    let name = regex::Regex::new(
        r"(?m)(?:- name: |key: |--from-literal=|^      )([A-Z][A-Z0-9_]+)(?:[=:]|\s*$)",
    )
    .unwrap();
    name.captures_iter(text)
        .map(|found| found[1].to_owned())
        .collect()
}

#[test]
fn every_variable_the_deployments_set_is_one_the_service_reads() {
    let known = variables();
    let compose = read("docker/docker-compose.yml");
    let mut service = "";
    let mut ours = String::new();
    for line in compose.lines() {
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            service = if name.starts_with(' ') { service } else { name };
        }
        if ["dispatcher", "mock-provider"].contains(&service) {
            ours.push_str(line);
            ours.push('\n');
        }
    }
    let kubernetes = read("docker/kubernetes/message-dispatcher.yaml");
    let set: Vec<String> = set_variables(&ours)
        .into_iter()
        .chain(set_variables(&kubernetes))
        .collect();
    for required in [
        "DATABASE_URL",
        "MIGRATE_ON_START",
        "PROVIDER_URL",
        "MOCK_ADDR",
    ] {
        assert!(
            set.iter().any(|name| name == required),
            "{required}: {set:?}"
        );
    }
    for name in &set {
        assert!(known.contains_key(name), "{name} is set but never read");
    }
}
