//! One post of one event: signed, bounded by the time-out as a whole,
//! never following a redirect.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::SigningKey;
use crate::deadline::{self, TimedOut};
use crate::domain::printable;

/// The longest receiver answer read (and then thrown away).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The longest error kept from one attempt.
const MAX_ERROR_CHARS: usize = 300;

/// What is posted: `{"type", "timestamp", "data"}`.
#[derive(Serialize)]
pub struct EventBody<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub event_type: &'a str,
    /// When the state changed.
    pub timestamp: DateTime<Utc>,
    /// The message as `GET /api/messages/{id}` shows it.
    pub data: T,
}

/// Posts events; holds an awc client, which is `!Send`: build it on the
/// thread that uses it.
pub struct WebhookClient {
    client: awc::Client,
    key: Option<SigningKey>,
    timeout: Duration,
}

impl WebhookClient {
    /// A client with the time-out, no redirects, `connections` at most.
    pub fn new(key: Option<SigningKey>, timeout: Duration, connections: usize) -> Self {
        let connector = awc::Connector::new().timeout(timeout).limit(connections);
        let client = awc::Client::builder()
            .timeout(timeout)
            .disable_redirects()
            .connector(connector)
            .finish();
        WebhookClient {
            client,
            key,
            timeout,
        }
    }

    /// Posts `body` as event `id` to `url`; `Ok` when the receiver answered
    /// 2xx, else why not.
    #[tracing::instrument(skip_all, fields(webhook_id = id))]
    pub async fn post(&self, url: &str, id: &str, body: Vec<u8>) -> Result<(), String> {
        // The time of this attempt: receivers refuse old timestamps, and a
        // retry may come hours after the event.
        let timestamp = Utc::now().timestamp();
        let mut request = self
            .client
            .post(url)
            .insert_header(("content-type", "application/json"))
            .insert_header(("webhook-id", id))
            .insert_header(("webhook-timestamp", timestamp.to_string()));
        if let Some(key) = &self.key {
            request = request.insert_header(("webhook-signature", key.sign(id, timestamp, &body)));
        }
        let call = async {
            let answer = match request.send_body(body).await {
                Ok(mut response) => {
                    // Read (a bounded part of) the answer, so the connection
                    // can be kept.
                    let _ = response.body().limit(MAX_ANSWER_BYTES).await;
                    let status = response.status();
                    if status.is_success() {
                        Ok(())
                    } else if status.is_redirection() {
                        Err(format!("answered {status}: redirects are not followed"))
                    } else {
                        Err(format!("answered {status}"))
                    }
                }
                Err(error) => Err(format!("not delivered: {error}")),
            };
            Ok::<_, TimedOut>(answer)
        };
        deadline::within(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} ms", self.timeout.as_millis())))
            .map_err(|error| printable(&error, MAX_ERROR_CHARS))
    }
}
