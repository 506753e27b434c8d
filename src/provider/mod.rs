//! The SMS providers: the HTTP call ([`ProviderClient`]), what its answers
//! mean ([`classify`]), the pause one may ask for ([`ProviderGate`]), the
//! breaker that takes a failing one out ([`Breaker`]), and which ones a
//! message may go to ([`route`]). Knows no actor and no SQL: it takes a
//! [`crate::domain::Claim`] and gives a [`crate::domain::ProviderAnswer`].

mod breaker;
mod classify;
mod client;
mod gate;
mod route;

pub use breaker::{Breaker, BreakerState, Permit};
pub use classify::{classify, BodyError, MAX_ANSWER_BYTES};
pub use client::ProviderClient;
pub use gate::ProviderGate;
pub use route::{all_paused_for, route, Provider, Providers, Route};
