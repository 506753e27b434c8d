//! The provider's `Retry-After`, kept for every call of the instance.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shared by the fetcher and every sender: once the provider answers with
/// `Retry-After`, no call at all goes out before that time.
#[derive(Clone, Debug, Default)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
