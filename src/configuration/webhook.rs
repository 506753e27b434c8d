//! Status webhooks: where events go, how they are signed, how hard the
//! service tries.

use std::time::Duration;

use envconfig::Envconfig;

use super::validate::Mistakes;
use super::{redacted_origin, Secret};
use crate::domain::CallbackUrl;
use crate::webhook::SigningKey;

/// `WEBHOOK_*`.
#[derive(Envconfig, derive_more::Debug, Clone)]
pub struct WebhookSettings {
    /// Where events go for messages without a `callback_url`; unset: only
    /// messages with one get events.
    #[envconfig(from = "WEBHOOK_URL")]
    #[debug("{:?}", url.as_deref().map(redacted_origin))]
    pub url: Option<String>,
    /// `whsec_<base64>`: signs every event; unset sends them unsigned.
    #[envconfig(from = "WEBHOOK_SECRET")]
    pub secret: Option<Secret>,
    #[envconfig(from = "WEBHOOK_MAX_ATTEMPTS", default = "10")]
    pub max_attempts: u32,
    /// Comma-separated hosts a `callback_url` may name; unset: any.
    #[envconfig(from = "WEBHOOK_ALLOWED_HOSTS")]
    pub allowed_hosts: Option<String>,
    /// Time allowed for one post, answer included.
    #[envconfig(from = "WEBHOOK_TIMEOUT_MS", default = "5000")]
    pub timeout_ms: u64,
    /// The first wait before a failed event is tried again; doubles per
    /// attempt, with jitter, at most an hour.
    #[envconfig(from = "WEBHOOK_RETRY_BASE_MS", default = "1000")]
    pub retry_base_ms: u64,
    /// Posts one instance keeps in flight at once.
    #[envconfig(from = "WEBHOOK_CONCURRENCY", default = "64")]
    pub concurrency: u32,
}

impl WebhookSettings {
    /// The default URL, when set and not empty.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref().filter(|url| !url.is_empty())
    }

    /// The hosts a `callback_url` may name; empty allows any.
    pub fn allowed_hosts(&self) -> Vec<String> {
        self.allowed_hosts
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect()
    }

    /// The key of `WEBHOOK_SECRET`, when set (checked at start).
    pub fn signing_key(&self) -> Option<SigningKey> {
        let secret = self.secret.as_ref().filter(|s| !s.expose().is_empty())?;
        SigningKey::parse(secret.expose()).ok()
    }

    /// Time allowed for one post.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `WEBHOOK_MAX_ATTEMPTS` and `WEBHOOK_RETRY_BASE_MS`.
    pub fn retry(&self) -> crate::domain::RetryPolicy {
        crate::domain::RetryPolicy {
            max_attempts: self.max_attempts,
            base: Duration::from_millis(self.retry_base_ms),
        }
    }

    /// Tells `mistakes` of each of its own.
    pub(super) fn check(&self, mistakes: &mut Mistakes) {
        if self
            .url()
            .is_some_and(|url| CallbackUrl::parse(url, &[]).is_err())
        {
            mistakes.push("WEBHOOK_URL must be an http:// or https:// URL with a host");
        }
        if let Some(secret) = self.secret.as_ref().filter(|s| !s.expose().is_empty()) {
            if let Err(reason) = SigningKey::parse(secret.expose()) {
                mistakes.push(format!("WEBHOOK_SECRET {reason}"));
            }
        }
        mistakes.range("WEBHOOK_MAX_ATTEMPTS", self.max_attempts.into(), 1, 1000);
        mistakes.range("WEBHOOK_TIMEOUT_MS", self.timeout_ms, 1, 600_000);
        mistakes.range("WEBHOOK_RETRY_BASE_MS", self.retry_base_ms, 1, 3_600_000);
        mistakes.range("WEBHOOK_CONCURRENCY", self.concurrency.into(), 1, 10_000);
    }
}
