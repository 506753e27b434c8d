//! Status webhooks to the client: the body of an event, its Standard
//! Webhooks signature, and the post. Knows no actor and no SQL: it takes an
//! event and says whether the receiver took it.

mod client;
mod signature;

pub use client::{EventBody, WebhookClient};
pub use signature::SigningKey;
