//! The configuration reference against the code.

use std::collections::BTreeMap;

pub fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `from = "NAME"` and its `default = "..."` in envconfig attributes.
fn declared(source: &str) -> BTreeMap<String, Option<String>> {
    source
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("from = \"")?;
            let (name, rest) = rest.split_once('"')?;
            let default = rest
                .split_once("default = \"")
                .and_then(|(_, d)| d.split_once('"'))
                .map(|(d, _)| d.to_owned());
            Some((name.to_owned(), default))
        })
        .collect()
}

/// Rows `| `NAME` | default | meaning |` of the reference's tables.
fn documented(reference: &str) -> BTreeMap<String, String> {
    reference
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(2)?.trim_matches('`').to_owned()))
        })
        .collect()
}

/// Every variable the service and the mock provider read, with its
/// default.
pub fn variables() -> BTreeMap<String, Option<String>> {
    [
        read("src/configuration/mod.rs"),
        read("src/configuration/providers.rs"),
        read("src/configuration/webhook.rs"),
        read("mock-provider/src/lib.rs"),
    ]
    .iter()
    .flat_map(|source| declared(source))
    .collect()
}

#[test]
fn every_variable_is_documented_with_its_default() {
    let declared = variables();
    let documented = documented(&read("docs/configuration.md"));

    assert_eq!(
        declared.keys().collect::<Vec<_>>(),
        documented.keys().collect::<Vec<_>>()
    );
    for (name, default) in &declared {
        let cell = &documented[name];
        match default {
            Some(default) => assert_eq!(cell, default, "{name}"),
            None => assert!(
                ["required", "one of the two", "unset", "host name and pid"]
                    .contains(&cell.as_str()),
                "{name}: {cell}"
            ),
        }
    }
    let example = read("config/message-dispatcher.env");
    for name in declared.keys() {
        assert!(
            example.lines().any(|line| line
                .trim_start_matches('#')
                .starts_with(&format!("{name}="))),
            "{name} is missing from config/message-dispatcher.env"
        );
    }
}
