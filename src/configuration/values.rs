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

/// `url` with its password and its query, either of which may hold a
/// credential, redacted: for the Debug print of settings.
pub fn redacted_url(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, _)) => (url, "?[redacted]"),
        None => (url, ""),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("{url}{query}");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:[redacted]@{host}{path}{query}")
        }
        None => format!("{url}{query}"),
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

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn a_url_loses_its_password_and_query_and_keeps_the_rest() {
        let cases = [
            (
                "https://sms.example.com/send",
                "https://sms.example.com/send",
            ),
            (
                "https://user:pa55@sms.example.com:8443/send?token=t0k",
                "https://user:[redacted]@sms.example.com:8443/send?[redacted]",
            ),
            ("http://key@10.0.0.1/x", "http://key:[redacted]@10.0.0.1/x"),
            ("http://h/p?a=1", "http://h/p?[redacted]"),
            ("not a url", "not a url"),
        ];
        for (url, printed) in cases {
            assert_eq!(redacted_url(url), printed, "{url}");
        }
    }
}
