//! Which providers a message may go to, in the order they are tried.

use std::sync::Arc;
use std::time::Duration;

use super::{Breaker, ProviderGate};
use crate::configuration::ProviderSettings;
use crate::domain::Claim;

/// One provider as the senders of an instance share it.
#[derive(Clone, Debug)]
pub struct Provider {
    pub settings: ProviderSettings,
    /// Its `Retry-After`: no call to it before then.
    pub gate: ProviderGate,
    pub breaker: Breaker,
}

impl Provider {
    pub fn new(settings: ProviderSettings) -> Self {
        Provider {
            breaker: Breaker::new(settings.breaker),
            gate: ProviderGate::default(),
            settings,
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }
}

/// The providers of an instance, in file order.
pub type Providers = Arc<[Provider]>;

/// How long every provider asked to wait (`Retry-After`), the shortest of
/// them; `None` while one may be called.
pub fn all_paused_for(providers: &[Provider]) -> Option<Duration> {
    providers
        .iter()
        .map(|provider| provider.gate.paused_for())
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

/// Where a message may go.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// These providers (indexes), in order.
    Try(Vec<usize>),
    /// No provider serves its number.
    Unserved,
    /// It is pinned to a provider that is no longer configured.
    PinnedElsewhere(String),
}

/// The providers `message` may go to: the one it is pinned to, if a call
/// there may have been accepted; else every provider that serves its number.
pub fn route(providers: &[Provider], message: &Claim) -> Route {
    if let Some(pinned) = &message.provider {
        return match providers.iter().position(|p| p.name() == pinned) {
            Some(index) => Route::Try(vec![index]),
            None => Route::PinnedElsewhere(pinned.clone()),
        };
    }
    let serving: Vec<usize> = (0..providers.len())
        .filter(|&index| providers[index].settings.serves(&message.phone_number))
        .collect();
    match serving.is_empty() {
        true => Route::Unserved,
        false => Route::Try(serving),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::BreakerSettings;

    fn provider(name: &str, prefixes: &[&str]) -> Provider {
        Provider::new(ProviderSettings {
            name: name.into(),
            url: format!("http://{name}.example/send"),
            auth_header: "x-ins-auth-key".into(),
            auth_key: None,
            timeout: Duration::from_secs(10),
            max_per_second: None,
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            breaker: BreakerSettings {
                failures: 5,
                cooldown: Duration::from_secs(30),
            },
        })
    }

    fn claim(to: &str, pinned: Option<&str>) -> Claim {
        Claim {
            id: 1,
            phone_number: to.into(),
            content: "hi".into(),
            attempts: 1,
            claim_token: 1,
            provider: pinned.map(str::to_owned),
        }
    }

    #[test]
    fn providers_are_tried_in_file_order_among_those_that_serve_the_number() {
        let providers = [
            provider("turkey", &["+90"]),
            provider("any", &[]),
            provider("uk", &["+44", "+90"]),
        ];
        assert_eq!(
            route(&providers, &claim("+905551234567", None)),
            Route::Try(vec![0, 1, 2])
        );
        assert_eq!(
            route(&providers, &claim("+447700900123", None)),
            Route::Try(vec![1, 2])
        );
        let narrow = [provider("turkey", &["+90"])];
        assert_eq!(
            route(&narrow, &claim("+15551234567", None)),
            Route::Unserved
        );
    }

    #[test]
    fn a_pinned_message_goes_to_its_provider_alone() {
        let providers = [provider("a", &[]), provider("b", &[])];
        assert_eq!(
            route(&providers, &claim("+1555", Some("b"))),
            Route::Try(vec![1])
        );
        assert_eq!(
            route(&providers, &claim("+1555", Some("gone"))),
            Route::PinnedElsewhere("gone".into())
        );
    }
}
