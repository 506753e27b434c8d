//! When a message may go, and in what order: its priority, its `send_at`,
//! its expiry (SPEC Part 2, "Priority, scheduled sends, expiry").

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest `ttl_seconds` taken: thirty days.
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A message's place in the queue, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    /// 0 to 9, higher first.
    pub priority: i16,
    pub send_at: Option<DateTime<Utc>>,
    /// Either a time, or a time to live from when it is stored.
    pub expiry: Option<Expiry>,
}

/// When a message expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    At(DateTime<Utc>),
    After(Duration),
}

impl Schedule {
    /// Checks what a client asked; the error says which field is wrong.
    pub fn parse(
        priority: Option<i64>,
        send_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
        ttl_seconds: Option<i64>,
    ) -> Result<Self, String> {
        let priority = match priority.unwrap_or(0) {
            p @ 0..=9 => p as i16,
            p => return Err(format!("priority must be between 0 and 9, got {p}")),
        };
        let expiry = match (expires_at, ttl_seconds) {
            (Some(_), Some(_)) => {
                return Err("give expires_at or ttl_seconds, not both".into());
            }
            (Some(at), None) => Some(Expiry::At(at)),
            (None, Some(ttl)) => {
                let ttl = u64::try_from(ttl)
                    .ok()
                    .map(Duration::from_secs)
                    .filter(|ttl| (1..=MAX_TTL.as_secs()).contains(&ttl.as_secs()));
                match ttl {
                    Some(ttl) => Some(Expiry::After(ttl)),
                    None => {
                        return Err(format!(
                            "ttl_seconds must be between 1 and {}",
                            MAX_TTL.as_secs()
                        ))
                    }
                }
            }
            (None, None) => None,
        };
        match (send_at, expiry) {
            (Some(send_at), Some(Expiry::At(expires_at))) if expires_at <= send_at => {
                return Err("expires_at must be after send_at".into());
            }
            (Some(send_at), Some(Expiry::After(ttl))) if Utc::now() + ttl <= send_at => {
                return Err("ttl_seconds must reach past send_at".into());
            }
            _ => {}
        }
        Ok(Schedule {
            priority,
            send_at,
            expiry,
        })
    }

    /// `expires_at`, when given as a time.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self.expiry {
            Some(Expiry::At(at)) => Some(at),
            _ => None,
        }
    }

    /// The time to live, when given as one.
    pub fn ttl(&self) -> Option<Duration> {
        match self.expiry {
            Some(Expiry::After(ttl)) => Some(ttl),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn nothing_given_is_priority_0_now_and_never_expiring() {
        assert_eq!(
            Schedule::parse(None, None, None, None),
            Ok(Schedule::default())
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let error = |p, s, e, t| Schedule::parse(p, s, e, t).unwrap_err();
        assert!(error(Some(10), None, None, None).contains("priority"));
        assert!(error(Some(-1), None, None, None).contains("priority"));
        assert!(error(None, None, at("2026-12-03T10:00:00Z"), Some(60)).contains("not both"));
        assert!(error(None, None, None, Some(0)).contains("ttl_seconds"));
        assert!(error(None, None, None, Some(40 * 24 * 3600)).contains("ttl_seconds"));
        let (send, expire) = (at("2026-12-03T10:00:00Z"), at("2026-12-03T09:00:00Z"));
        assert!(error(None, send, expire, None).contains("after send_at"));
        let next_year = Some(Utc::now() + chrono::Duration::days(365));
        assert!(error(None, next_year, None, Some(60)).contains("past send_at"));
    }

    #[test]
    fn a_ttl_or_a_time_is_kept_as_given() {
        let ttl = Schedule::parse(Some(9), None, None, Some(300)).unwrap();
        assert_eq!(
            (ttl.priority, ttl.ttl(), ttl.expires_at()),
            (9, Some(Duration::from_secs(300)), None)
        );
        let at_time = Schedule::parse(None, None, at("2026-12-03T09:00:00Z"), None).unwrap();
        assert_eq!(at_time.expires_at(), at("2026-12-03T09:00:00Z"));
    }
}
