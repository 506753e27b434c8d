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

/// `url` with everything that may hold a credential redacted: all before
/// the last `@` (user and password, whatever they contain), the query and
/// the fragment. Scheme, host and path stay: for the Debug print of
/// settings.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return without_query(url);
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://[redacted]@{}", without_query(host)),
        None => format!("{scheme}://{}", without_query(rest)),
    }
}

/// [`redacted_url`] without its path either: for URLs that carry a token
/// in the path, as webhook receivers' often do.
pub fn redacted_origin(url: &str) -> String {
    let url = redacted_url(url);
    let start = url.find("://").map_or(0, |scheme| scheme + 3);
    match url[start..].find(['/', '?', '#']) {
        Some(end) => format!("{}/[redacted]", &url[..start + end]),
        None => url,
    }
}

fn without_query(text: &str) -> String {
    match text.find(['?', '#']) {
        Some(at) => format!("{}{}[redacted]", &text[..at], &text[at..=at]),
        None => text.to_owned(),
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
    use super::{redacted_origin, redacted_url};

    #[test]
    fn a_url_loses_what_may_hold_a_credential_and_keeps_the_rest() {
        let cases = [
            (
                "https://sms.example.com/send",
                "https://sms.example.com/send",
            ),
            (
                "https://user:pa55@sms.example.com:8443/send?token=t0k",
                "https://[redacted]@sms.example.com:8443/send?[redacted]",
            ),
            ("http://t0ken@10.0.0.1/x", "http://[redacted]@10.0.0.1/x"),
            ("postgres://u:ab/c?d@db/app", "postgres://[redacted]@db/app"),
            ("http://h/p?a=1", "http://h/p?[redacted]"),
            ("http://h/p#s3cret", "http://h/p#[redacted]"),
            ("not a url?k=v", "not a url?[redacted]"),
        ];
        for (url, printed) in cases {
            assert_eq!(redacted_url(url), printed, "{url}");
        }
        let origins = [
            (
                "https://hooks.example.com/T0/B1/s3cret",
                "https://hooks.example.com/[redacted]",
            ),
            (
                "https://u:p@hooks.example.com?k=1",
                "https://[redacted]@hooks.example.com/[redacted]",
            ),
            ("https://hooks.example.com", "https://hooks.example.com"),
        ];
        for (url, printed) in origins {
            assert_eq!(redacted_origin(url), printed, "{url}");
        }
    }
}
