//! The SMS provider: the HTTP call ([`ProviderClient`]), what its answers
//! mean ([`classify`]), and the pause it may ask for ([`ProviderGate`]).
//! Knows no actor and no SQL: it takes a [`crate::domain::Claim`] and gives
//! a [`crate::domain::ProviderAnswer`].

mod classify;
mod client;
mod gate;

pub use classify::{classify, BodyError, MAX_ANSWER_BYTES};
pub use client::ProviderClient;
pub use gate::ProviderGate;
