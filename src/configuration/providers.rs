//! The providers: one from `PROVIDER_URL`, or several from the TOML file
//! `PROVIDERS_FILE` (SPEC Part 2, "Several providers"). Keys are read from
//! the environment variables the file names, never from the file.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Uri;
use envconfig::Envconfig;

use super::{redacted_url, ConfigError, Secret};

mod file;

/// The variables of the single provider, and the file of several.
#[derive(Envconfig, derive_more::Debug, Clone)]
pub struct ProviderVariables {
    #[envconfig(from = "PROVIDER_URL")]
    #[debug("{:?}", url.as_deref().map(redacted_url))]
    pub url: Option<String>,
    /// Also the default `auth_header` of the file's providers.
    #[envconfig(from = "PROVIDER_AUTH_HEADER", default = "x-ins-auth-key")]
    pub auth_header: String,
    #[envconfig(from = "PROVIDER_AUTH_KEY")]
    pub auth_key: Option<Secret>,
    /// Also the default `timeout_ms` of the file's providers.
    #[envconfig(from = "PROVIDER_TIMEOUT_MS", default = "10000")]
    pub timeout_ms: u64,
    #[envconfig(from = "PROVIDERS_FILE")]
    pub file: Option<PathBuf>,
}

/// One provider, validated.
#[derive(derive_more::Debug, Clone)]
pub struct ProviderSettings {
    /// `[a-z0-9_-]+`, unique; `default` for `PROVIDER_URL`.
    pub name: String,
    #[debug("{:?}", redacted_url(url))]
    pub url: String,
    pub auth_header: String,
    pub auth_key: Option<Secret>,
    pub timeout: Duration,
    /// The provider's own rate limit, kept by the whole fleet.
    pub max_per_second: Option<u32>,
    /// Numbers it serves, by prefix; empty serves any number.
    pub prefixes: Vec<String>,
    pub breaker: BreakerSettings,
}

/// When a provider is taken out, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failed calls in a row that open the breaker; 0 never opens it.
    pub failures: u32,
    /// How long it stays open before a single probe.
    pub cooldown: Duration,
}

/// The breaker of the file's providers unless they say otherwise. With
/// `PROVIDER_URL` alone there is nothing to fail over to and the backoff
/// already spaces the calls: its breaker never opens.
const FILE_BREAKER: BreakerSettings = BreakerSettings {
    failures: 5,
    cooldown: Duration::from_secs(30),
};

impl ProviderVariables {
    /// The providers, in the order they are tried; `env` reads the
    /// variables the file names.
    pub(super) fn providers(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<ProviderSettings>, ConfigError> {
        match (&self.url, &self.file) {
            (Some(_), Some(_)) => Err(ConfigError(
                "PROVIDER_URL and PROVIDERS_FILE are both set: use one of the two".into(),
            )),
            (None, None) => Err(ConfigError(
                "PROVIDER_URL or PROVIDERS_FILE is required but neither is set".into(),
            )),
            (Some(url), None) => Ok(vec![self.single(url)?]),
            (None, Some(path)) => self.read_file(path, env),
        }
    }

    fn single(&self, url: &str) -> Result<ProviderSettings, ConfigError> {
        let fail = |text: &str| Err(ConfigError(text.into()));
        if !is_http_url(url) {
            return fail("PROVIDER_URL must be an http:// or https:// URL");
        }
        if HeaderName::from_str(&self.auth_header).is_err() {
            return fail("PROVIDER_AUTH_HEADER is not a valid HTTP header name");
        }
        if let Some(key) = &self.auth_key {
            if HeaderValue::from_str(key.expose()).is_err() {
                return fail("PROVIDER_AUTH_KEY contains characters not allowed in a header");
            }
        }
        Ok(ProviderSettings {
            name: "default".into(),
            url: url.into(),
            auth_header: self.auth_header.clone(),
            auth_key: self.auth_key.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            max_per_second: None,
            prefixes: Vec::new(),
            breaker: BreakerSettings {
                failures: 0,
                ..FILE_BREAKER
            },
        })
    }
}

impl ProviderSettings {
    /// Whether this provider serves `phone_number`.
    pub fn serves(&self, phone_number: &str) -> bool {
        self.prefixes.is_empty()
            || self
                .prefixes
                .iter()
                .any(|prefix| phone_number.starts_with(prefix.as_str()))
    }
}

fn is_http_url(url: &str) -> bool {
    let uri = Uri::from_str(url).ok();
    matches!(
        uri.as_ref().and_then(Uri::scheme_str),
        Some("http" | "https")
    ) && uri.as_ref().and_then(Uri::host).is_some()
}
