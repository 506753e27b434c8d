//! What an HTTP answer of the provider means, by the SPEC: a pure function,
//! tested on its own.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use actix_web::http::header::{HeaderValue, HttpDate};
use actix_web::http::StatusCode;
use serde::Deserialize;

use crate::domain::{printable, ProviderAnswer};

/// The largest provider answer read; a bigger one is an error, not a crash.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How much of a provider's error body is kept in `last_error`.
const ERROR_EXCERPT_CHARS: usize = 200;

/// Why the answer's body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`MAX_ANSWER_BYTES`]: it would be as big again next time.
    TooLarge,
    /// Cut short or timed out: the next call may read it.
    Unreadable(String),
}

#[derive(Deserialize)]
struct Accepted {
    #[serde(rename = "messageId")]
    message_id: String,
}

/// Classifies an answer by the SPEC: 2xx with a `messageId` is accepted;
/// 429 and 503 say the provider did not take the message, other 5xx leave
/// it uncertain; anything else is a refusal. A 2xx whose body
/// was cut short is transient: the provider may have the message, and a call
/// with the same `Idempotency-Key` tells its `messageId`.
pub fn classify(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    body: Result<&[u8], BodyError>,
) -> ProviderAnswer {
    let retry_after = retry_after.and_then(parse_retry_after);
    if status.is_success() {
        return classify_success(status, retry_after, body);
    }
    let detail = body.map(excerpt).unwrap_or_default();
    let reason = if detail.is_empty() {
        format!("provider answered {status}")
    } else {
        format!("provider answered {status}: {detail}")
    };
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            ProviderAnswer::Unavailable {
                reason,
                retry_after,
            }
        }
        status if status.is_server_error() => ProviderAnswer::Transient {
            reason,
            retry_after,
        },
        _ => ProviderAnswer::Rejected { reason },
    }
}

/// A 2xx: accepted with a usable `messageId`, transient when the body could
/// not be read, else refused.
fn classify_success(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Result<&[u8], BodyError>,
) -> ProviderAnswer {
    let reason = match body {
        Err(BodyError::TooLarge) => {
            format!("provider answered {status} but its answer is over {MAX_ANSWER_BYTES} bytes")
        }
        Err(BodyError::Unreadable(error)) => {
            return ProviderAnswer::Transient {
                reason: format!(
                    "provider answered {status} but the answer could not be read: {error}"
                ),
                retry_after,
            }
        }
        Ok(bytes) => match serde_json::from_slice::<Accepted>(bytes) {
            Ok(accepted) if accepted.message_id.chars().any(char::is_control) => {
                format!("provider answered {status} with a messageId that holds control characters")
            }
            Ok(accepted) if !accepted.message_id.trim().is_empty() => {
                return ProviderAnswer::Accepted {
                    message_id: accepted.message_id,
                }
            }
            Ok(_) => format!("provider answered {status} with an empty messageId"),
            Err(_) => format!(
                "provider answered {status} without a messageId: {}",
                excerpt(bytes)
            ),
        },
    };
    ProviderAnswer::Rejected { reason }
}

/// `Retry-After` as seconds or as an HTTP date, at most an hour: a provider
/// cannot park the pipeline for longer than the longest backoff.
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let date: SystemTime = HttpDate::from_str(text).ok()?.into();
            date.duration_since(SystemTime::now()).unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The start of a body, fit for `last_error`: control characters (NUL
/// among them, which PostgreSQL refuses in text) become spaces.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut excerpt = printable(text, ERROR_EXCERPT_CHARS);
    if text.chars().count() > ERROR_EXCERPT_CHARS {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> ProviderAnswer {
        classify(
            StatusCode::from_u16(status).unwrap(),
            None,
            Ok(body.as_bytes()),
        )
    }

    #[test]
    fn a_2xx_with_a_message_id_is_accepted() {
        let body = r#"{"message":"Accepted","messageId":"67f2f8a8-ea58-4ed0-a6f9-ff217df4d849"}"#;
        assert_eq!(
            answer(202, body),
            ProviderAnswer::Accepted {
                message_id: "67f2f8a8-ea58-4ed0-a6f9-ff217df4d849".into()
            }
        );
        assert!(matches!(
            answer(200, r#"{"messageId":"x"}"#),
            ProviderAnswer::Accepted { .. }
        ));
    }

    #[test]
    fn a_2xx_without_a_usable_message_id_is_rejected() {
        for body in [
            "",
            "not json",
            r#"{"message":"Accepted"}"#,
            r#"{"messageId":""}"#,
            r#"{"messageId":42}"#,
        ] {
            assert!(
                matches!(answer(202, body), ProviderAnswer::Rejected { .. }),
                "{body:?}"
            );
        }
        let huge = classify(StatusCode::ACCEPTED, None, Err(BodyError::TooLarge));
        assert!(matches!(huge, ProviderAnswer::Rejected { reason } if reason.contains("65536")));
    }

    #[test]
    fn a_2xx_cut_short_is_transient_so_the_same_key_recovers_it() {
        let cut = classify(
            StatusCode::ACCEPTED,
            None,
            Err(BodyError::Unreadable("connection reset".into())),
        );
        assert!(
            matches!(cut, ProviderAnswer::Transient { reason, .. } if reason.contains("connection reset"))
        );
    }

    #[test]
    fn a_429_and_a_503_say_the_message_was_not_taken_other_server_errors_may_have_taken_it() {
        for status in [429, 503] {
            assert!(
                matches!(answer(status, ""), ProviderAnswer::Unavailable { .. }),
                "{status}"
            );
        }
        for status in [500, 502, 504] {
            assert!(
                matches!(answer(status, ""), ProviderAnswer::Transient { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn other_client_errors_are_rejected_with_the_body_in_the_reason() {
        let rejected = answer(400, r#"{"error":"bad number"}"#);
        assert_eq!(
            rejected,
            ProviderAnswer::Rejected {
                reason: r#"provider answered 400 Bad Request: {"error":"bad number"}"#.into()
            }
        );
        for status in [401, 403, 404, 408, 422, 301] {
            assert!(
                matches!(answer(status, ""), ProviderAnswer::Rejected { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let seconds = HeaderValue::from_static("7");
        let limited = classify(StatusCode::TOO_MANY_REQUESTS, Some(&seconds), Ok(b""));
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        let past = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        let transient = classify(StatusCode::SERVICE_UNAVAILABLE, Some(&past), Ok(b""));
        assert_eq!(transient.retry_after(), Some(Duration::ZERO));
        let garbage = HeaderValue::from_static("soon");
        let limited = classify(StatusCode::TOO_MANY_REQUESTS, Some(&garbage), Ok(b""));
        assert!(matches!(
            limited,
            ProviderAnswer::Unavailable {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn retry_after_is_capped_at_an_hour() {
        for huge in [
            "18446744073709551615",
            "31536000",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let value = HeaderValue::from_static(huge);
            let limited = classify(StatusCode::TOO_MANY_REQUESTS, Some(&value), Ok(b""));
            assert_eq!(limited.retry_after(), Some(MAX_RETRY_AFTER), "{huge}");
        }
    }

    #[test]
    fn control_characters_never_reach_the_row() {
        let ProviderAnswer::Transient { reason, .. } = answer(500, "bad\0thing\r\n") else {
            panic!("expected a transient failure");
        };
        assert!(!reason.chars().any(char::is_control), "{reason:?}");
        assert!(matches!(
            answer(202, r#"{"messageId":"a\u0000b"}"#),
            ProviderAnswer::Rejected { .. }
        ));
    }

    #[test]
    fn long_error_bodies_are_cut() {
        let ProviderAnswer::Rejected { reason } = answer(400, &"x".repeat(5000)) else {
            panic!("expected a rejection");
        };
        assert!(reason.chars().count() < 300, "{}", reason.len());
        assert!(reason.ends_with('…'));
    }
}
