//! The provider call: one `POST` per message, per the SPEC's protocol, bounded
//! as a whole by `PROVIDER_TIMEOUT_MS`.

use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, RETRY_AFTER};
use awc::error::{PayloadError, SendRequestError};
use serde::Serialize;

use super::classify::{classify, BodyError, MAX_ANSWER_BYTES};
use crate::configuration::ProviderSettings;
use crate::deadline::{self, TimedOut};
use crate::domain::{Attempt, Claim, ProviderAnswer};

#[derive(Serialize)]
struct SendBody<'a> {
    to: &'a str,
    content: &'a str,
}

/// An HTTP client for the provider. Holds an awc client, which is `!Send`:
/// build it on the thread (arbiter) that uses it.
#[derive(Clone)]
pub struct ProviderClient {
    /// The provider's name, for its calls' history and metrics.
    name: String,
    client: awc::Client,
    url: String,
    timeout: Duration,
}

impl ProviderClient {
    /// A client with the auth header, the time-out, no redirects, and room
    /// for `connections` calls at once (awc's default is 100).
    pub fn new(settings: &ProviderSettings, connections: usize) -> Self {
        let connector = awc::Connector::new()
            .timeout(settings.timeout)
            .limit(connections);
        let mut builder = awc::Client::builder()
            .timeout(settings.timeout)
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
            name: settings.name.clone(),
            client: builder.finish(),
            url: settings.url.clone(),
            timeout: settings.timeout,
        }
    }

    /// Sends one message, with its id as the `Idempotency-Key`; returns
    /// what the answer means and the call's record.
    #[tracing::instrument(skip_all, fields(message_id = message.id, attempt = message.attempts, provider = %self.name))]
    pub async fn send(&self, message: &Claim) -> (ProviderAnswer, Attempt) {
        let body = SendBody {
            to: &message.phone_number,
            content: &message.content,
        };
        let (started_at, started) = (chrono::Utc::now(), std::time::Instant::now());
        // One bound for the whole call, answer read included: a provider
        // that trickles its answer cannot hold the call past the time-out.
        let call = async { Ok::<_, TimedOut>(self.call(message, &body).await) };
        let (answer, http_status) = deadline::within(self.timeout, call)
            .await
            .unwrap_or_else(|_| (timed_out(), None));
        let duration = started.elapsed();
        metrics::histogram!("dispatcher_provider_call_duration_seconds", "provider" => self.name.clone())
            .record(duration.as_secs_f64());
        let attempt = Attempt::of(&self.name, started_at, duration, http_status, &answer);
        (answer, attempt)
    }

    /// The call, and the HTTP status of its answer if one came.
    async fn call(&self, message: &Claim, body: &SendBody<'_>) -> (ProviderAnswer, Option<u16>) {
        let request = self
            .client
            .post(&self.url)
            .insert_header(("Idempotency-Key", message.id.to_string()));
        let mut response = match request.send_json(body).await {
            Ok(response) => response,
            Err(error) => return (transport_failure(&error), None),
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
        let answer = classify(
            status,
            retry_after.as_ref(),
            body.as_deref().map_err(Clone::clone),
        );
        (answer, Some(status.as_u16()))
    }
}

fn timed_out() -> ProviderAnswer {
    ProviderAnswer::Transient {
        reason: TIMED_OUT.to_owned(),
        retry_after: None,
    }
}

const TIMED_OUT: &str = "provider did not answer in time";

/// A call that got no answer. Only a connection that was never made proves
/// the provider does not have the message.
fn transport_failure(error: &SendRequestError) -> ProviderAnswer {
    let retry_after = None;
    match error {
        SendRequestError::Connect(error) => ProviderAnswer::Unavailable {
            reason: format!("could not connect to the provider: {error}"),
            retry_after,
        },
        SendRequestError::Timeout => timed_out(),
        other => ProviderAnswer::Transient {
            reason: format!("provider call failed: {other}"),
            retry_after,
        },
    }
}
