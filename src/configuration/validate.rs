//! The checks that turn read variables into settings: every mistake is
//! found, one clear line each, not only the first.

use std::collections::HashMap;

use envconfig::Envconfig;

use super::{DatabaseSettings, Secret, Settings, ToolSettings, Variables};

/// Why the settings could not be read: one mistake per line, each naming
/// its variable.
#[derive(Debug, derive_more::Error)]
pub struct ConfigError(#[error(not(source))] pub(super) String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, line) in self.0.lines().enumerate() {
            let separator = if n == 0 { "" } else { "\n" };
            write!(f, "{separator}configuration error: {line}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// Each mistake, one per item.
    pub fn mistakes(&self) -> impl Iterator<Item = &str> {
        self.0.lines()
    }
}

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
        "DISPATCH_AUTOSTART" | "MIGRATE_ON_START" => "expected true or false",
        "LOG_FORMAT" => "expected json or pretty",
        "DISPATCH_SCOPE" => "expected cluster or instance",
        _ => "expected a whole number",
    }
}

/// The mistakes found so far.
#[derive(Default)]
pub(super) struct Mistakes(Vec<String>);

impl Mistakes {
    pub(super) fn push(&mut self, mistake: impl Into<String>) {
        self.0.push(mistake.into());
    }

    /// A mistake when `value` is outside `min..=max`.
    pub(super) fn range(&mut self, name: &str, value: u64, min: u64, max: u64) {
        if !(min..=max).contains(&value) {
            self.push(format!(
                "{name} must be between {min} and {max}, got {value}"
            ));
        }
    }

    /// Whether a mistake about the variable `name` was found already.
    fn about(&self, name: &str) -> bool {
        let told = format!("{name} ");
        self.0.iter().any(|mistake| mistake.starts_with(&told))
    }

    /// The value of `result`, or its mistakes.
    fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|error| self.push(error.0)).ok()
    }

    fn into_result<T>(self, value: T) -> Result<T, ConfigError> {
        match self.0.is_empty() {
            true => Ok(value),
            false => Err(self.into_error()),
        }
    }

    pub(super) fn into_error(self) -> ConfigError {
        ConfigError(self.0.join("\n"))
    }
}

impl Variables {
    /// The variables of `vars`, each unreadable one told to `mistakes` and
    /// read as if it were unset (a missing one as if empty), so that the
    /// checks after it still run.
    pub(super) fn read(vars: &HashMap<String, String>, mistakes: &mut Mistakes) -> Option<Self> {
        let mut vars = vars.clone();
        let mut told = Vec::new();
        loop {
            let error = match Variables::init_from_hashmap(&vars) {
                Ok(variables) => return Some(variables),
                Err(error) => error,
            };
            let (envconfig::Error::EnvVarMissing { name } | envconfig::Error::ParseError { name }) =
                error;
            if told.contains(&name) {
                return None;
            }
            told.push(name);
            match error {
                envconfig::Error::EnvVarMissing { .. } => vars.insert(name.into(), String::new()),
                envconfig::Error::ParseError { .. } => vars.remove(name),
            };
            mistakes.push(ConfigError::from(error).0);
        }
    }

    /// The settings these variables make, or every mistake; `env` reads the
    /// variables a providers file names.
    pub(super) fn validated(
        self,
        mut mistakes: Mistakes,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        self.check_ranges(&mut mistakes);
        self.webhook.check(&mut mistakes);
        let providers = mistakes.take(self.provider.providers(env));
        let Variables {
            database,
            redis,
            http,
            dispatch,
            webhook,
            log_format,
            ..
        } = self;
        let mut settings = Settings {
            database,
            redis,
            http,
            providers: providers.unwrap_or_default(),
            dispatch,
            webhook,
            log_format,
        };
        settings.check(&mut mistakes);
        mistakes.into_result(settings)
    }

    fn check_ranges(&self, mistakes: &mut Mistakes) {
        let dispatch = &self.dispatch;
        let timeout = self.provider.timeout_ms;
        mistakes.range("PROVIDER_TIMEOUT_MS", timeout, 1, 3_600_000);
        mistakes.range(
            "DISPATCH_BATCH_SIZE",
            dispatch.batch_size.into(),
            1,
            100_000,
        );
        mistakes.range("DISPATCH_INTERVAL_MS", dispatch.interval_ms, 1, 86_400_000);
        mistakes.range(
            "SENDER_POOL_SIZE",
            dispatch.sender_pool_size.into(),
            1,
            1024,
        );
        let concurrency = dispatch.sender_concurrency.into();
        mistakes.range("SENDER_CONCURRENCY", concurrency, 1, 10_000);
        mistakes.range("MAX_ATTEMPTS", dispatch.max_attempts.into(), 1, 1000);
        mistakes.range("RETRY_BASE_MS", dispatch.retry_base_ms, 1, 86_400_000);
        mistakes.range("LEASE_MS", dispatch.lease_ms, 1, 86_400_000);
        let max_wait = dispatch.priority_max_wait_ms;
        mistakes.range("PRIORITY_MAX_WAIT_MS", max_wait, 1, 604_800_000);
        mistakes.range("CACHE_TTL_SECS", self.redis.ttl_secs, 1, 31_536_000);
        if let Some(days) = dispatch.retention_days {
            mistakes.range("RETENTION_DAYS", days.into(), 1, 36_500);
        }
    }
}

impl DatabaseSettings {
    /// `DATABASE_URL` as PostgreSQL's client reads it.
    fn check(&self, mistakes: &mut Mistakes) {
        let url = self.url.expose();
        if let Err(error) = url.parse::<sqlx::postgres::PgConnectOptions>() {
            mistakes.push(format!(
                "DATABASE_URL is not a valid PostgreSQL URL: {error}"
            ));
        }
    }
}

impl ToolSettings {
    /// Reads and validates what the one-off commands read.
    pub fn from_env() -> Result<Self, ConfigError> {
        let settings = Self::init_from_env()?;
        let mut mistakes = Mistakes::default();
        settings.database.check(&mut mistakes);
        mistakes.into_result(settings)
    }
}

impl Settings {
    /// The checks across variables; a missing `INSTANCE_ID` is made here.
    fn check(&mut self, mistakes: &mut Mistakes) {
        // Unless it was missing, and its mistake told already.
        if !mistakes.about("DATABASE_URL") {
            self.database.check(mistakes);
        }
        let has = |key: &Option<Secret>| key.as_ref().is_some_and(|k| !k.expose().is_empty());
        if has(&self.http.api_key_previous) && !has(&self.http.api_key) {
            mistakes.push("API_KEY_PREVIOUS is set without API_KEY: set the new key in API_KEY");
        }
        match &self.dispatch.instance_id {
            Some(id) if id.trim().is_empty() => mistakes.push("INSTANCE_ID must not be empty"),
            Some(_) => {}
            None => {
                let host = gethostname::gethostname().to_string_lossy().into_owned();
                self.dispatch.instance_id = Some(format!("{host}-{}", std::process::id()));
            }
        }
    }
}
