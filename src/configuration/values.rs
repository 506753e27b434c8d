//! The typed values of settings: secrets, the log format, the scope.

use std::fmt;
use std::str::FromStr;

/// A value that must never reach a log line or a Debug print.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this secret, compared in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(presented.ct_eq(self.0.as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err(()),
        }
    }
}

/// Whether start/stop and the rate are shared by the fleet or per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchScope {
    /// One state and one rate for every instance on the database.
    Cluster,
    /// Each instance keeps its own state and rate.
    Instance,
}

impl DispatchScope {
    /// The name, as in `DISPATCH_SCOPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchScope::Cluster => "cluster",
            DispatchScope::Instance => "instance",
        }
    }
}

impl FromStr for DispatchScope {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cluster" => Ok(DispatchScope::Cluster),
            "instance" => Ok(DispatchScope::Instance),
            _ => Err(()),
        }
    }
}
