//! A URL that status events may be posted to: `http` or `https`, a host
//! name or IPv4 address, an optional port, path and query, at most 2,048
//! characters, and, when the operator lists hosts, one of those.

use std::sync::LazyLock;

use regex::Regex;

/// The longest URL kept.
pub const MAX_CHARS: usize = 2048;

/// What a callback URL must match; the OpenAPI document gives the same
/// pattern (`routes/messages.rs`), so the two cannot disagree.
pub const PATTERN: &str = r"^https?://(([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$";

static URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(PATTERN).expect("a valid pattern"));

/// A checked callback URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    /// `url` if it may receive events; `allowed_hosts` empty allows any
    /// host. Hosts compare without case.
    pub fn parse(url: &str, allowed_hosts: &[String]) -> Result<Self, String> {
        if url.chars().count() > MAX_CHARS {
            return Err(format!(
                "callback_url must be at most {MAX_CHARS} characters"
            ));
        }
        let host = URL
            .captures(url)
            .and_then(|parts| parts.get(1))
            .ok_or("callback_url must be an http:// or https:// URL with a host, as in https://hooks.example.com/sms")?
            .as_str();
        if !allowed_hosts.is_empty() && !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
        {
            return Err(format!(
                "callback_url's host {host} is not among WEBHOOK_ALLOWED_HOSTS"
            ));
        }
        Ok(CallbackUrl(url.to_owned()))
    }
}

impl AsRef<str> for CallbackUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        for url in [
            "https://hooks.example.com/sms",
            "http://127.0.0.1:9000/x?y=1&z=%20",
            "https://a.example:65535",
        ] {
            assert!(CallbackUrl::parse(url, &[]).is_ok(), "{url}");
        }
        for url in [
            "ftp://example.com/",
            "/relative",
            "https://",
            "example.com",
            "https://u:p@example.com/",
            "http://0*",
            "https://a.example:65536/",
            "https://a.example/with space",
        ] {
            assert!(CallbackUrl::parse(url, &[]).is_err(), "{url}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_CHARS));
        assert!(CallbackUrl::parse(&long, &[]).is_err());
    }

    #[test]
    fn with_allowed_hosts_only_those_are_taken() {
        let allowed = vec!["hooks.example.com".to_owned()];
        assert!(CallbackUrl::parse("https://HOOKS.example.com/a", &allowed).is_ok());
        let refused = CallbackUrl::parse("https://evil.example.net/a", &allowed).unwrap_err();
        assert!(refused.contains("WEBHOOK_ALLOWED_HOSTS"), "{refused}");
    }
}
