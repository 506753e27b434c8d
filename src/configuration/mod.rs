//! Settings, read once from the environment at start-up and validated into
//! typed values, so that a bad variable stops the process with one line that
//! names it instead of failing later, in the middle of a send.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use envconfig::Envconfig;

mod providers;
mod validate;
mod values;
mod webhook;

pub use providers::{BreakerSettings, ProviderSettings, ProviderVariables};
pub use validate::ConfigError;
use validate::Mistakes;
pub use values::{redacted_origin, redacted_url, DispatchScope, LogFormat, Secret};
pub use webhook::WebhookSettings;

/// The shortest lease the service keeps: renewed every third of it, a lease
/// must outlast a few statement round trips, a busy pool and a pause of the
/// process. A shorter `LEASE_MS` is raised to it.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// Every setting of the service, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub http: HttpSettings,
    /// In the order they are tried; never empty.
    pub providers: Vec<ProviderSettings>,
    pub dispatch: DispatchSettings,
    pub webhook: WebhookSettings,
    pub log_format: LogFormat,
}

/// Every variable, as read, before [`Settings`] are made of them.
#[derive(Envconfig)]
struct Variables {
    #[envconfig(nested)]
    database: DatabaseSettings,
    #[envconfig(nested)]
    redis: RedisSettings,
    #[envconfig(nested)]
    http: HttpSettings,
    #[envconfig(nested)]
    provider: ProviderVariables,
    #[envconfig(nested)]
    dispatch: DispatchSettings,
    #[envconfig(nested)]
    webhook: WebhookSettings,
    #[envconfig(from = "LOG_FORMAT", default = "json")]
    log_format: LogFormat,
}

/// PostgreSQL.
#[derive(Envconfig, derive_more::Debug, Clone)]
pub struct DatabaseSettings {
    /// May hold a password, hence a secret; printed without it.
    #[envconfig(from = "DATABASE_URL")]
    #[debug("{:?}", redacted_url(url.expose()))]
    pub url: Secret,
    /// Applies pending migrations at start; when false, the service refuses
    /// to start while one is pending (`message-dispatcher migrate` applies
    /// them).
    #[envconfig(from = "MIGRATE_ON_START", default = "true")]
    pub migrate_on_start: bool,
}

/// What the one-off commands (`migrate`, `purge`) read: a deploy step
/// needs no provider settings.
#[derive(Envconfig)]
pub struct ToolSettings {
    #[envconfig(nested)]
    pub database: DatabaseSettings,
    #[envconfig(from = "LOG_FORMAT", default = "json")]
    pub log_format: LogFormat,
}

/// Redis, the optional delivery cache.
#[derive(Envconfig, derive_more::Debug, Clone)]
pub struct RedisSettings {
    /// Unset disables the cache; printed without its password.
    #[envconfig(from = "REDIS_URL")]
    #[debug("{:?}", url.as_ref().map(|url| redacted_url(url.expose())))]
    pub url: Option<Secret>,
    /// How long `message:<id>` lives in Redis.
    #[envconfig(from = "CACHE_TTL_SECS", default = "604800")]
    pub ttl_secs: u64,
}

/// The control API.
#[derive(Envconfig, Debug, Clone)]
pub struct HttpSettings {
    #[envconfig(from = "HTTP_ADDR", default = "0.0.0.0:8080")]
    pub addr: SocketAddr,
    /// When set, `/api/*` requires `Authorization: Bearer <key>`.
    #[envconfig(from = "API_KEY")]
    pub api_key: Option<Secret>,
    /// Also accepted while clients move to a new `API_KEY`.
    #[envconfig(from = "API_KEY_PREVIOUS")]
    pub api_key_previous: Option<Secret>,
    /// When set, `POST /provider/receipts` requires it in `x-receipt-key`.
    #[envconfig(from = "RECEIPT_AUTH_KEY")]
    pub receipt_auth_key: Option<Secret>,
}

impl HttpSettings {
    /// The keys `/api/*` accepts; empty means no check. An empty value
    /// counts as unset.
    pub fn api_keys(&self) -> Vec<Secret> {
        [&self.api_key, &self.api_key_previous]
            .into_iter()
            .flatten()
            .filter(|key| !key.expose().is_empty())
            .cloned()
            .collect()
    }

    /// The key receipts must carry; an empty value counts as unset.
    pub fn receipt_key(&self) -> Option<Secret> {
        self.receipt_auth_key
            .clone()
            .filter(|key| !key.expose().is_empty())
    }
}

/// The pace and shape of the pipeline.
#[derive(Envconfig, Debug, Clone)]
pub struct DispatchSettings {
    #[envconfig(from = "DISPATCH_BATCH_SIZE", default = "2")]
    pub batch_size: u32,
    #[envconfig(from = "DISPATCH_INTERVAL_MS", default = "120000")]
    pub interval_ms: u64,
    #[envconfig(from = "DISPATCH_AUTOSTART", default = "true")]
    pub autostart: bool,
    #[envconfig(from = "SENDER_POOL_SIZE", default = "4")]
    pub sender_pool_size: u32,
    /// Provider calls one sender actor keeps in flight at once.
    #[envconfig(from = "SENDER_CONCURRENCY", default = "32")]
    pub sender_concurrency: u32,
    #[envconfig(from = "MAX_ATTEMPTS", default = "5")]
    pub max_attempts: u32,
    #[envconfig(from = "RETRY_BASE_MS", default = "1000")]
    pub retry_base_ms: u64,
    #[envconfig(from = "LEASE_MS", default = "60000")]
    pub lease_ms: u64,
    #[envconfig(from = "DISPATCH_SCOPE", default = "cluster")]
    pub scope: DispatchScope,
    /// The longest a message waits behind higher priorities.
    #[envconfig(from = "PRIORITY_MAX_WAIT_MS", default = "600000")]
    pub priority_max_wait_ms: u64,
    /// Finished messages older than this many days are deleted; unset keeps
    /// them all.
    #[envconfig(from = "RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Unset: host name and process id.
    #[envconfig(from = "INSTANCE_ID")]
    pub instance_id: Option<String>,
}

impl Settings {
    /// Reads and validates the process environment; the error lists every
    /// mistake.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Self::from_map(&vars)
    }

    /// Reads and validates a map of variables, as tests do.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut mistakes = Mistakes::default();
        match Variables::read(vars, &mut mistakes) {
            Some(variables) => variables.validated(mistakes, &|name| vars.get(name).cloned()),
            None => Err(mistakes.into_error()),
        }
    }

    /// The longest time-out of the providers.
    pub fn longest_provider_timeout(&self) -> Duration {
        self.providers
            .iter()
            .map(|provider| provider.timeout)
            .max()
            .unwrap_or_default()
    }
}

impl DispatchSettings {
    /// Time between ticks.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// Provider calls the sender pool can hold at once: the most a tick claims.
    pub fn capacity(&self) -> u32 {
        self.sender_pool_size
            .saturating_mul(self.sender_concurrency)
    }

    /// `MAX_ATTEMPTS` and `RETRY_BASE_MS`.
    pub fn retry(&self) -> crate::domain::RetryPolicy {
        crate::domain::RetryPolicy {
            max_attempts: self.max_attempts,
            base: Duration::from_millis(self.retry_base_ms),
        }
    }

    /// How long a claim lasts between two renewals: `LEASE_MS`, or
    /// [`MIN_LEASE`] when that is shorter.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms).max(MIN_LEASE)
    }

    /// `PRIORITY_MAX_WAIT_MS`.
    pub fn priority_max_wait(&self) -> Duration {
        Duration::from_millis(self.priority_max_wait_ms)
    }

    /// `RETENTION_DAYS` as a duration.
    pub fn retention(&self) -> Option<Duration> {
        self.retention_days
            .map(|days| Duration::from_secs(u64::from(days) * 86_400))
    }

    /// The name of this instance in logs, claims and status.
    pub fn instance_id(&self) -> &str {
        self.instance_id.as_deref().unwrap_or("unnamed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://u:hunter2@localhost/db"),
            ("PROVIDER_URL", "http://127.0.0.1:9090/send"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            map.insert(k.to_string(), v.to_string());
        }
        map
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        Settings::from_map(&vars(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_follow_the_spec() {
        let settings = Settings::from_map(&vars(&[])).unwrap();
        assert_eq!(settings.dispatch.batch_size, 2);
        assert_eq!(settings.dispatch.interval(), Duration::from_secs(120));
        assert!(settings.dispatch.autostart);
        assert_eq!(settings.dispatch.sender_pool_size, 4);
        assert_eq!(settings.dispatch.max_attempts, 5);
        assert_eq!(settings.dispatch.scope, DispatchScope::Cluster);
        assert_eq!(settings.providers[0].auth_header, "x-ins-auth-key");
        assert_eq!(settings.providers[0].name, "default");
        assert_eq!(settings.http.addr.port(), 8080);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert!(settings.redis.url.is_none());
        assert!(!settings.dispatch.instance_id().is_empty());
        assert_eq!(settings.dispatch.retention(), None);
        let kept = Settings::from_map(&vars(&[("RETENTION_DAYS", "30")])).unwrap();
        assert_eq!(
            kept.dispatch.retention(),
            Some(Duration::from_secs(30 * 86_400))
        );
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        let mut map = vars(&[]);
        map.remove("DATABASE_URL");
        let error = Settings::from_map(&map).unwrap_err().to_string();
        assert_eq!(
            error,
            "configuration error: DATABASE_URL is required but not set"
        );
    }

    #[test]
    fn a_database_url_postgresql_cannot_read_is_a_mistake() {
        let error = error_of(&[("DATABASE_URL", "postgres://u:pw@db:notaport/app")]);
        assert!(
            error.starts_with("configuration error: DATABASE_URL is not a valid PostgreSQL URL"),
            "{error}"
        );
        assert!(!error.contains("pw"), "{error}");
    }

    #[test]
    fn a_malformed_number_is_named() {
        assert!(error_of(&[("DISPATCH_BATCH_SIZE", "two")]).contains("DISPATCH_BATCH_SIZE"));
        assert!(error_of(&[("DISPATCH_AUTOSTART", "yes")]).contains("true or false"));
        assert!(error_of(&[("LOG_FORMAT", "xml")]).contains("LOG_FORMAT"));
        assert!(error_of(&[("DISPATCH_SCOPE", "global")]).contains("DISPATCH_SCOPE"));
        assert!(error_of(&[("HTTP_ADDR", "8080")]).contains("HTTP_ADDR"));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(error_of(&[("DISPATCH_BATCH_SIZE", "0")]).contains("DISPATCH_BATCH_SIZE"));
        assert!(error_of(&[("SENDER_POOL_SIZE", "0")]).contains("SENDER_POOL_SIZE"));
        assert!(error_of(&[("MAX_ATTEMPTS", "0")]).contains("MAX_ATTEMPTS"));
        assert!(error_of(&[("PROVIDER_URL", "ftp://x/send")]).contains("PROVIDER_URL"));
        assert!(error_of(&[("PROVIDER_URL", "not a url")]).contains("PROVIDER_URL"));
        assert!(
            error_of(&[("PROVIDER_AUTH_HEADER", "bad header")]).contains("PROVIDER_AUTH_HEADER")
        );
        assert!(error_of(&[("INSTANCE_ID", " ")]).contains("INSTANCE_ID"));
        assert_eq!(
            error_of(&[("RETENTION_DAYS", "0")]),
            "configuration error: RETENTION_DAYS must be between 1 and 36500, got 0"
        );
        assert!(error_of(&[("RETENTION_DAYS", "a week")]).contains("RETENTION_DAYS"));
    }

    #[test]
    fn every_mistake_is_listed_not_only_the_first() {
        let mut map = vars(&[
            ("DISPATCH_BATCH_SIZE", "two"),
            ("LOG_FORMAT", "xml"),
            ("MAX_ATTEMPTS", "0"),
            ("WEBHOOK_TIMEOUT_MS", "0"),
            ("API_KEY_PREVIOUS", "old"),
        ]);
        map.remove("DATABASE_URL");
        map.remove("PROVIDER_URL");
        let error = Settings::from_map(&map).unwrap_err();
        let mistakes: Vec<&str> = error.mistakes().collect();
        let named = [
            "DATABASE_URL is required",
            "DISPATCH_BATCH_SIZE has a malformed value",
            "LOG_FORMAT has a malformed value",
            "MAX_ATTEMPTS must be between",
            "WEBHOOK_TIMEOUT_MS must be between",
            "PROVIDER_URL or PROVIDERS_FILE is required",
            "API_KEY_PREVIOUS is set without API_KEY",
        ];
        for start in named {
            assert!(
                mistakes.iter().any(|m| m.starts_with(start)),
                "{start}: {mistakes:?}"
            );
        }
        assert_eq!(mistakes.len(), named.len(), "{mistakes:?}");
        let printed = error.to_string();
        assert!(printed
            .lines()
            .all(|l| l.starts_with("configuration error: ")));
        assert_eq!(printed.lines().count(), named.len());
    }

    #[test]
    fn migrations_run_at_start_unless_told_not_to() {
        let settings = Settings::from_map(&vars(&[])).unwrap();
        assert!(settings.database.migrate_on_start);
        let off = Settings::from_map(&vars(&[("MIGRATE_ON_START", "false")])).unwrap();
        assert!(!off.database.migrate_on_start);
        assert!(error_of(&[("MIGRATE_ON_START", "no")]).contains("true or false"));
    }

    #[test]
    fn a_lease_shorter_than_a_call_is_allowed_and_a_tiny_one_is_raised() {
        for lease in ["3000", "5000", "15000"] {
            let settings = Settings::from_map(&vars(&[("LEASE_MS", lease)])).unwrap();
            assert_eq!(settings.dispatch.lease().as_millis().to_string(), lease);
        }
        let tiny = Settings::from_map(&vars(&[("LEASE_MS", "1")])).unwrap();
        assert_eq!(tiny.dispatch.lease(), MIN_LEASE);
        assert!(error_of(&[("LEASE_MS", "0")]).contains("LEASE_MS"));
    }

    #[test]
    fn secrets_never_reach_a_debug_print() {
        let settings = Settings::from_map(&vars(&[
            ("PROVIDER_AUTH_KEY", "s3cr3t"),
            ("API_KEY", "k3y"),
        ]))
        .unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(!printed.contains("k3y"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }
}
