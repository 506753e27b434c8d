//! `PROVIDERS_FILE`: read, parsed, and checked with one line per mistake.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::{is_http_url, BreakerSettings, ProviderSettings, ProviderVariables, FILE_BREAKER};
use crate::configuration::{ConfigError, Secret};

/// A provider as the file writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    url: String,
    auth_header: Option<String>,
    auth_key_env: Option<String>,
    /// Never taken: refused with a line that says where keys go.
    auth_key: Option<toml::Value>,
    timeout_ms: Option<u64>,
    max_per_second: Option<u32>,
    #[serde(default)]
    prefixes: Vec<String>,
    breaker_failures: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    provider: Vec<Entry>,
}

impl ProviderVariables {
    pub(super) fn read_file(
        &self,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<ProviderSettings>, ConfigError> {
        let at = format!("PROVIDERS_FILE {}", path.display());
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError(format!("{at}: cannot be read: {error}")))?;
        let file: File = toml::from_str(&text).map_err(|error| {
            let line = error
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            let line = line.map(|n| format!(", line {n}")).unwrap_or_default();
            ConfigError(format!("{at}{line}: {}", error.message().trim()))
        })?;
        let mut mistakes = Vec::new();
        if file.provider.is_empty() {
            mistakes.push(format!("{at}: names no [[provider]]"));
        }
        let (mut providers, mut names) = (Vec::new(), Vec::new());
        for (n, entry) in file.provider.into_iter().enumerate() {
            let before = mistakes.len();
            let mut mistake = |text: String| {
                mistakes.push(format!(
                    "{at}: provider {} ({:?}): {text}",
                    n + 1,
                    entry.name
                ))
            };
            if names.contains(&entry.name) {
                mistake("the name is used twice".into());
            }
            names.push(entry.name.clone());
            let provider = self.entry(&entry, env, &mut mistake);
            if mistakes.len() == before {
                providers.push(provider);
            }
        }
        match mistakes.is_empty() {
            true => Ok(providers),
            false => Err(ConfigError(mistakes.join("\n"))),
        }
    }

    /// The provider of `entry`, with the defaults of the variables; each
    /// mistake is told to `mistake`.
    fn entry(
        &self,
        entry: &Entry,
        env: &dyn Fn(&str) -> Option<String>,
        mistake: &mut dyn FnMut(String),
    ) -> ProviderSettings {
        entry.check(mistake);
        let auth_header = entry.auth_header.as_ref().unwrap_or(&self.auth_header);
        if HeaderName::from_str(auth_header).is_err() {
            mistake("auth_header is not a valid HTTP header name".into());
        }
        let timeout_ms = entry.timeout_ms.unwrap_or(self.timeout_ms);
        let cooldown_ms = entry
            .breaker_cooldown_ms
            .unwrap_or(FILE_BREAKER.cooldown.as_millis() as u64);
        for (name, value) in [
            ("timeout_ms", timeout_ms),
            ("breaker_cooldown_ms", cooldown_ms),
        ] {
            if !(1..=3_600_000).contains(&value) {
                mistake(format!("{name} must be between 1 and 3600000, got {value}"));
            }
        }
        ProviderSettings {
            name: entry.name.clone(),
            url: entry.url.clone(),
            auth_header: auth_header.clone(),
            auth_key: entry.auth_key(env, mistake),
            timeout: Duration::from_millis(timeout_ms),
            max_per_second: entry.max_per_second,
            prefixes: entry.prefixes.clone(),
            breaker: BreakerSettings {
                failures: entry.breaker_failures.unwrap_or(FILE_BREAKER.failures),
                cooldown: Duration::from_millis(cooldown_ms),
            },
        }
    }
}

impl Entry {
    /// The checks of the entry's own values.
    fn check(&self, mistake: &mut dyn FnMut(String)) {
        if self.name.is_empty() || !self.name.bytes().all(is_name_byte) {
            mistake("name must be made of a-z, 0-9, _ and -".into());
        }
        if !is_http_url(&self.url) {
            mistake("url must be an http:// or https:// URL".into());
        }
        if self.auth_key.is_some() {
            mistake("auth_key is never read from the file: name the environment variable that holds it in auth_key_env".into());
        }
        if self.max_per_second == Some(0) {
            mistake("max_per_second must be at least 1 (leave it out for no limit)".into());
        }
        for prefix in &self.prefixes {
            if !is_prefix(prefix) {
                mistake(format!(
                    "prefix {prefix:?} must be digits, with an optional leading +"
                ));
            }
        }
    }

    /// The key in the variable `auth_key_env` names.
    fn auth_key(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        mistake: &mut dyn FnMut(String),
    ) -> Option<Secret> {
        let name = self.auth_key_env.as_ref()?;
        match env(name) {
            None => mistake(format!("auth_key_env names {name}, which is not set")),
            Some(key) if HeaderValue::from_str(&key).is_err() => mistake(format!(
                "{name} contains characters not allowed in a header"
            )),
            Some(key) => {
                return Some(Secret::from_str(&key).unwrap_or_else(|never| match never {}))
            }
        }
        None
    }
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
}

fn is_prefix(prefix: &str) -> bool {
    let digits = prefix.strip_prefix('+').unwrap_or(prefix);
    (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use crate::configuration::Settings;

    /// The settings of a providers file holding `toml`, with `extra`
    /// variables.
    fn settings(toml: &str, extra: &[(&str, &str)]) -> Result<Settings, String> {
        let path = std::env::temp_dir().join(format!("providers-{}.toml", fastrand::u64(..)));
        std::fs::write(&path, toml).unwrap();
        let mut vars: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://localhost/db"),
            ("PROVIDERS_FILE", path.to_str().unwrap()),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.retain(|_, v| !v.is_empty());
        let settings = Settings::from_map(&vars).map_err(|e| e.to_string());
        std::fs::remove_file(&path).unwrap();
        settings
    }

    #[test]
    fn the_example_file_is_valid() {
        let example = include_str!("../../../config/providers.example.toml");
        let settings = settings(example, &[("PRIMARY_KEY", "k1"), ("BACKUP_KEY", "k2")]).unwrap();
        let names: Vec<&str> = settings.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["primary", "backup"]);
        assert_eq!(settings.providers[0].max_per_second, Some(100));
        assert_eq!(
            settings.providers[0].auth_key.as_ref().unwrap().expose(),
            "k1"
        );
    }

    #[test]
    fn defaults_come_from_the_variables_and_the_breaker_is_on() {
        let file = "[[provider]]\nname = \"a\"\nurl = \"http://a.example/send\"\n";
        let settings = settings(file, &[("PROVIDER_TIMEOUT_MS", "2500")]).unwrap();
        let a = &settings.providers[0];
        assert_eq!(a.auth_header, "x-ins-auth-key");
        assert_eq!(a.timeout, Duration::from_millis(2500));
        assert!(a.auth_key.is_none() && a.prefixes.is_empty() && a.max_per_second.is_none());
        assert_eq!(a.breaker.failures, 5);
        assert_eq!(a.breaker.cooldown, Duration::from_secs(30));
    }

    #[test]
    fn every_mistake_is_one_line_that_names_the_provider() {
        let file = r#"
            [[provider]]
            name = "Primary"
            url = "ftp://a.example/send"
            auth_key = "s3cr3t"
            max_per_second = 0
            prefixes = ["+90x"]

            [[provider]]
            name = "b"
            url = "http://b.example/send"
            auth_key_env = "B_KEY"
            timeout_ms = 0

            [[provider]]
            name = "b"
            url = "http://b2.example/send"
        "#;
        let error = settings(file, &[]).unwrap_err();
        for expected in [
            r#"provider 1 ("Primary"): name must be made of a-z"#,
            r#"provider 1 ("Primary"): url must be an http:// or https:// URL"#,
            r#"provider 1 ("Primary"): auth_key is never read from the file"#,
            r#"provider 1 ("Primary"): max_per_second must be at least 1"#,
            r#"provider 1 ("Primary"): prefix "+90x" must be digits"#,
            r#"provider 2 ("b"): auth_key_env names B_KEY, which is not set"#,
            r#"provider 2 ("b"): timeout_ms must be between 1 and 3600000, got 0"#,
            r#"provider 3 ("b"): the name is used twice"#,
        ] {
            assert!(error.contains(expected), "{expected:?} not in:\n{error}");
        }
        assert_eq!(error.lines().count(), 8, "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_toml_or_names_an_unknown_key_is_refused_with_its_line() {
        let error = settings("[[provider]]\nname = \"a\"\nurll = \"x\"\n", &[]).unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("unknown field `urll`"), "{error}");
        let error = settings("[[provider]\n", &[]).unwrap_err();
        assert!(error.contains("PROVIDERS_FILE"), "{error}");
        assert!(settings("", &[])
            .unwrap_err()
            .contains("names no [[provider]]"));
    }

    #[test]
    fn the_file_and_the_url_are_one_or_the_other() {
        let file = "[[provider]]\nname = \"a\"\nurl = \"http://a.example/send\"\n";
        let both = settings(file, &[("PROVIDER_URL", "http://x.example/send")]).unwrap_err();
        assert!(both.contains("use one of the two"), "{both}");
        let none = Settings::from_map(
            &[("DATABASE_URL", "postgres://localhost/db")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            none.contains("PROVIDER_URL or PROVIDERS_FILE is required"),
            "{none}"
        );
        let missing = settings(file, &[("PROVIDERS_FILE", "/nonexistent/providers.toml")]);
        assert!(missing.unwrap_err().contains("cannot be read"));
    }
}
