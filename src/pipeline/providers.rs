//! What status tells of each provider of the instance.

use std::time::Duration;

use crate::provider::Providers;

/// One provider, as status shows it.
#[derive(Debug, Clone)]
pub struct ProviderState {
    pub name: String,
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub max_per_second: Option<u32>,
    pub prefixes: Vec<String>,
    /// How long its `Retry-After` still holds calls back.
    pub paused_for: Option<Duration>,
}

/// The instance's providers, for status.
#[derive(Clone)]
pub struct ProviderBoard(Providers);

impl ProviderBoard {
    /// The board of `providers`; publishes each breaker's state (closed).
    pub(super) fn new(providers: Providers) -> Self {
        for provider in providers.iter() {
            metrics::gauge!("dispatcher_provider_breaker_state", "provider" => provider.name().to_owned())
                .set(provider.breaker.state().gauge());
        }
        ProviderBoard(providers)
    }

    /// Each provider's state now, in file order.
    pub fn states(&self) -> Vec<ProviderState> {
        self.0
            .iter()
            .map(|provider| ProviderState {
                name: provider.name().to_owned(),
                breaker: provider.breaker.state().as_str(),
                max_per_second: provider.settings.max_per_second,
                prefixes: provider.settings.prefixes.clone(),
                paused_for: provider.gate.paused_for(),
            })
            .collect()
    }
}
