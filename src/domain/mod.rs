//! Values that cannot hold a bad state: a phone number, a message body, and
//! what became of one delivery attempt.

mod content;
mod outcome;
mod phone_number;

pub use content::Content;
pub use outcome::{backoff, Outcome, OutcomeKind, RetryPolicy};
pub use phone_number::PhoneNumber;
