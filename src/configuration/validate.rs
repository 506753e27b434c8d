//! The checks that turn read variables into settings, one clear line per
//! mistake.

use super::{Secret, Settings, Variables};

/// Why the settings could not be read; the message names the variable.
#[derive(Debug, derive_more::Display, derive_more::Error)]
#[display("configuration error: {_0}")]
pub struct ConfigError(#[error(not(source))] pub(super) String);

impl From<envconfig::Error> for ConfigError {
    fn from(error: envconfig::Error) -> Self {
        let text = match error {
            envconfig::Error::EnvVarMissing { name } => format!("{name} is required but not set"),
            envconfig::Error::ParseError { name } => {
                format!("{name} has a malformed value ({})", expected(name))
            }
        };
        ConfigError(text)
    }
}

/// What a variable must look like, for the parse error of envconfig, which
/// names the variable but not the reason.
fn expected(name: &str) -> &'static str {
    match name {
        "HTTP_ADDR" => "expected host:port, such as 0.0.0.0:8080",
        "DISPATCH_AUTOSTART" => "expected true or false",
        "LOG_FORMAT" => "expected json or pretty",
        "DISPATCH_SCOPE" => "expected cluster or instance",
        _ => "expected a whole number",
    }
}

impl Variables {
    /// The settings these variables make, or the first mistake; `env` reads
    /// the variables a providers file names.
    pub(super) fn validated(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        self.check_ranges()?;
        let providers = self.provider.providers(env)?;
        let Variables {
            database,
            redis,
            http,
            dispatch,
            webhook,
            log_format,
            ..
        } = self;
        Settings {
            database,
            redis,
            http,
            providers,
            dispatch,
            webhook,
            log_format,
        }
        .validated()
    }
}

impl Settings {
    fn validated(mut self) -> Result<Self, ConfigError> {
        self.check_api_keys()?;
        self.webhook.check()?;
        match &self.dispatch.instance_id {
            Some(id) if id.trim().is_empty() => {
                return Err(ConfigError("INSTANCE_ID must not be empty".into()))
            }
            Some(_) => {}
            None => {
                let host = gethostname::gethostname().to_string_lossy().into_owned();
                self.dispatch.instance_id = Some(format!("{host}-{}", std::process::id()));
            }
        }
        Ok(self)
    }

    fn check_api_keys(&self) -> Result<(), ConfigError> {
        let has = |key: &Option<Secret>| key.as_ref().is_some_and(|k| !k.expose().is_empty());
        if has(&self.http.api_key_previous) && !has(&self.http.api_key) {
            return Err(ConfigError(
                "API_KEY_PREVIOUS is set without API_KEY: set the new key in API_KEY".into(),
            ));
        }
        Ok(())
    }
}

impl Variables {
    fn check_ranges(&self) -> Result<(), ConfigError> {
        let dispatch = &self.dispatch;
        let ranges: [(&str, u64, u64, u64); 10] = [
            (
                "PROVIDER_TIMEOUT_MS",
                self.provider.timeout_ms,
                1,
                3_600_000,
            ),
            (
                "DISPATCH_BATCH_SIZE",
                dispatch.batch_size.into(),
                1,
                100_000,
            ),
            ("DISPATCH_INTERVAL_MS", dispatch.interval_ms, 1, 86_400_000),
            (
                "SENDER_POOL_SIZE",
                dispatch.sender_pool_size.into(),
                1,
                1024,
            ),
            (
                "SENDER_CONCURRENCY",
                dispatch.sender_concurrency.into(),
                1,
                10_000,
            ),
            ("MAX_ATTEMPTS", dispatch.max_attempts.into(), 1, 1000),
            ("RETRY_BASE_MS", dispatch.retry_base_ms, 1, 86_400_000),
            ("LEASE_MS", dispatch.lease_ms, 1, 86_400_000),
            (
                "PRIORITY_MAX_WAIT_MS",
                dispatch.priority_max_wait_ms,
                1,
                604_800_000,
            ),
            ("CACHE_TTL_SECS", self.redis.ttl_secs, 1, 31_536_000),
        ];
        let retention = dispatch
            .retention_days
            .map(|days| ("RETENTION_DAYS", u64::from(days), 1, 36_500));
        match ranges
            .into_iter()
            .chain(retention)
            .find(|(_, value, min, max)| !(min..=max).contains(&value))
        {
            Some((name, value, min, max)) => Err(ConfigError(format!(
                "{name} must be between {min} and {max}, got {value}"
            ))),
            None => Ok(()),
        }
    }
}
