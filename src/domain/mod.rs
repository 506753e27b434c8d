//! The service's values and rules, with no I/O and nothing else of ours:
//! a message's state and claim, a phone number, a body, what a provider's
//! answer means, what becomes of the row after an attempt, a delivery
//! receipt, and a status event's place in the outbox.

mod answer;
mod callback_url;
mod content;
mod event;
mod message;
mod outcome;
mod phone_number;
mod receipt;
mod schedule;
mod segments;
mod text;

pub use answer::{Attempt, AttemptResult, ProviderAnswer};
pub use callback_url::{CallbackUrl, PATTERN as CALLBACK_URL_PATTERN};
pub use content::Content;
pub use event::EventStatus;
pub use message::{Claim, MessageStatus};
pub use outcome::{backoff, Outcome, OutcomeKind, RetryPolicy};
pub use phone_number::PhoneNumber;
pub use receipt::{DeliveryStatus, Receipt, ReceiptStatus};
pub use schedule::{Expiry, Schedule};
pub use segments::{Encoding, Segments};
pub use text::printable;
