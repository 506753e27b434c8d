//! The provider call: one `POST` per message, per the SPEC's protocol, and
//! the classification of whatever comes back.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::{HeaderName, HeaderValue, HttpDate, CONTENT_LENGTH, RETRY_AFTER};
use actix_web::http::StatusCode;
use awc::error::{PayloadError, SendRequestError};
use serde::{Deserialize, Serialize};

use crate::configuration::ProviderSettings;
use crate::repository::ClaimedMessage;

/// The largest provider answer read; a bigger one is an error, not a crash.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How much of a provider's error body is kept in `last_error`.
const ERROR_EXCERPT_CHARS: usize = 200;

/// What the provider's answer means for the message.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderAnswer {
    /// A 2xx with a `messageId`: the provider has the message.
    Accepted { message_id: String },
    /// Worth trying again: 5xx, 429, a time-out, a connection error, an
    /// accepted answer cut short.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Never worth trying again: any other 4xx, or a 2xx without a `messageId`.
    Rejected { reason: String },
}

impl ProviderAnswer {
    /// How long the provider asked everyone to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderAnswer::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Why the answer's body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`MAX_ANSWER_BYTES`]: it would be as big again next time.
    TooLarge,
    /// Cut short or timed out: the next call may read it.
    Unreadable(String),
}

/// Shared by the fetcher and every sender: once the provider answers with
/// `Retry-After`, no call at all goes out before that time.
#[derive(Clone, Default)]
pub struct ProviderGate(Arc<Mutex<Option<Instant>>>);

impl ProviderGate {
    /// Closes the gate for `wait`, unless it is already closed for longer;
    /// returns whether this call closed or extended it.
    pub fn pause_for(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        let mut paused = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if paused.is_some_and(|current| current >= until) {
            return false;
        }
        *paused = Some(until);
        true
    }

    /// How long the gate stays closed; `None` when calls may go out.
    pub fn paused_for(&self) -> Option<Duration> {
        let paused = *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        paused
            .and_then(|until| until.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }
}

#[derive(Serialize)]
struct SendBody<'a> {
    to: &'a str,
    content: &'a str,
}

#[derive(Deserialize)]
struct Accepted {
    #[serde(rename = "messageId")]
    message_id: String,
}

/// An HTTP client for the provider. Holds an awc client, which is `!Send`:
/// build it on the thread (arbiter) that uses it.
#[derive(Clone)]
pub struct ProviderClient {
    client: awc::Client,
    url: String,
    timeout: Duration,
}

impl ProviderClient {
    /// A client with the auth header, the time-out, no redirects, and room
    /// for `connections` calls at once (awc's default is 100).
    pub fn new(settings: &ProviderSettings, connections: usize) -> Self {
        let connector = awc::Connector::new()
            .timeout(settings.timeout())
            .limit(connections);
        let mut builder = awc::Client::builder()
            .timeout(settings.timeout())
            .disable_redirects()
            .connector(connector);
        if let Some(key) = &settings.auth_key {
            // Both were checked when the settings were read.
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_str(&settings.auth_header),
                HeaderValue::from_str(key.expose()),
            ) {
                value.set_sensitive(true);
                builder = builder.add_default_header((name, value));
            }
        }
        ProviderClient {
            client: builder.finish(),
            url: settings.url.clone(),
            timeout: settings.timeout(),
        }
    }

    /// Sends one message, with its id as the `Idempotency-Key`.
    #[tracing::instrument(skip_all, fields(message_id = message.id, attempt = message.attempts))]
    pub async fn send(&self, message: &ClaimedMessage) -> ProviderAnswer {
        let body = SendBody {
            to: &message.phone_number,
            content: &message.content,
        };
        let started = std::time::Instant::now();
        // One bound for the whole call, answer read included: a provider
        // that trickles its answer cannot hold the call past the time-out.
        let answer = tokio::time::timeout(self.timeout, self.call(message, &body))
            .await
            .unwrap_or_else(|_| timed_out());
        metrics::histogram!("dispatcher_provider_call_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        answer
    }

    async fn call(&self, message: &ClaimedMessage, body: &SendBody<'_>) -> ProviderAnswer {
        let request = self
            .client
            .post(&self.url)
            .insert_header(("Idempotency-Key", message.id.to_string()));
        let mut response = match request.send_json(body).await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
        let body = response
            .body()
            .limit(MAX_ANSWER_BYTES)
            .await
            .map_err(|error| match error {
                PayloadError::Overflow => BodyError::TooLarge,
                other => BodyError::Unreadable(other.to_string()),
            })
            .and_then(|body| match announced {
                // A connection reset in the middle of the body can end it
                // without an error: the length tells.
                Some(length) if body.len() < length => Err(BodyError::Unreadable(format!(
                    "the answer was cut short after {} of {length} bytes",
                    body.len()
                ))),
                _ => Ok(body),
            });
        classify(
            status,
            retry_after.as_ref(),
            body.as_deref().map_err(Clone::clone),
        )
    }
}

fn timed_out() -> ProviderAnswer {
    ProviderAnswer::Transient {
        reason: TIMED_OUT.to_owned(),
        retry_after: None,
    }
}

const TIMED_OUT: &str = "provider did not answer in time";

fn transport_failure(error: &SendRequestError) -> ProviderAnswer {
    let reason = match error {
        SendRequestError::Timeout => TIMED_OUT.to_owned(),
        SendRequestError::Connect(error) => format!("could not connect to the provider: {error}"),
        other => format!("provider call failed: {other}"),
    };
    ProviderAnswer::Transient {
        reason,
        retry_after: None,
    }
}

/// Classifies an answer by the SPEC: 2xx with a `messageId` is accepted;
/// 5xx and 429 are transient; anything else is a refusal. A 2xx whose body
/// was cut short is transient: the provider may have the message, and a call
/// with the same `Idempotency-Key` tells its `messageId`.
pub fn classify(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    body: Result<&[u8], BodyError>,
) -> ProviderAnswer {
    let retry_after = retry_after.and_then(parse_retry_after);
    if status.is_success() {
        let reason = match body {
            Err(BodyError::TooLarge) => {
                format!(
                    "provider answered {status} but its answer is over {MAX_ANSWER_BYTES} bytes"
                )
            }
            Err(BodyError::Unreadable(error)) => {
                return ProviderAnswer::Transient {
                    reason: format!(
                        "provider answered {status} but the answer could not be read: {error}"
                    ),
                    retry_after,
                }
            }
            Ok(bytes) => {
                match serde_json::from_slice::<Accepted>(bytes) {
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
                }
            }
        };
        return ProviderAnswer::Rejected { reason };
    }
    let detail = body.map(excerpt).unwrap_or_default();
    let reason = if detail.is_empty() {
        format!("provider answered {status}")
    } else {
        format!("provider answered {status}: {detail}")
    };
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        ProviderAnswer::Transient {
            reason,
            retry_after,
        }
    } else {
        ProviderAnswer::Rejected { reason }
    }
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
    let mut excerpt: String = text
        .chars()
        .take(ERROR_EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
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
    fn server_errors_and_429_are_transient() {
        for status in [500, 502, 503, 504, 429] {
            assert!(
                matches!(answer(status, ""), ProviderAnswer::Transient { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn the_gate_closes_for_the_longest_wait_asked() {
        let gate = ProviderGate::default();
        assert_eq!(gate.paused_for(), None);
        assert!(gate.pause_for(Duration::from_secs(60)));
        assert!(
            !gate.pause_for(Duration::from_secs(1)),
            "a shorter wait does not shorten it"
        );
        assert!(gate
            .paused_for()
            .is_some_and(|d| d > Duration::from_secs(59)));
        assert!(gate.pause_for(Duration::from_secs(120)));
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
            ProviderAnswer::Transient {
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
