//! A circuit breaker per provider, shared by the senders of an instance:
//! closed while calls work, open after `failures` failed calls in a row,
//! half-open after the cool-down, when a single call probes the provider.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::configuration::BreakerSettings;

/// The state of a breaker, as status and metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// The name, as in logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The value of `dispatcher_provider_breaker_state`.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

/// What the breaker lets a caller do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Call.
    Call,
    /// Call: the one probe of a half-open breaker.
    Probe,
    /// Do not call; ask again after this long.
    Wait(Duration),
}

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `probe`: when the probe in flight was let out. One that has not
    /// reported within a cool-down (its task ended without a word) is
    /// replaced.
    HalfOpen {
        probe: Option<Instant>,
    },
}

/// Shared by clones: one per provider per instance.
#[derive(Clone, Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Arc<Mutex<State>>,
}

/// How long a caller waits while another one probes.
const PROBE_WAIT: Duration = Duration::from_secs(1);

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Breaker {
            settings,
            state: Arc::new(Mutex::new(State::Closed { failures: 0 })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may go out at `now`; returns the state it moved to,
    /// if it moved (open to half-open, when the cool-down is over).
    pub fn permit(&self, now: Instant) -> (Permit, Option<BreakerState>) {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => (Permit::Call, None),
            State::Open { until } if now < until => (Permit::Wait(until - now), None),
            State::Open { .. } => {
                *state = State::HalfOpen { probe: Some(now) };
                (Permit::Probe, Some(BreakerState::HalfOpen))
            }
            State::HalfOpen { probe: Some(since) }
                if now.saturating_duration_since(since) < self.settings.cooldown =>
            {
                (Permit::Wait(PROBE_WAIT), None)
            }
            State::HalfOpen { .. } => {
                *state = State::HalfOpen { probe: Some(now) };
                (Permit::Probe, None)
            }
        }
    }

    /// A probe permit that was not used: another caller may probe.
    pub fn release(&self, permit: Permit) {
        let mut state = self.lock();
        if let (Permit::Probe, State::HalfOpen { .. }) = (permit, &*state) {
            *state = State::HalfOpen { probe: None };
        }
    }

    /// The result of a call made at `now`; returns the state it moved to,
    /// if it moved.
    pub fn record(&self, worked: bool, now: Instant) -> Option<BreakerState> {
        let mut state = self.lock();
        let open = State::Open {
            until: now + self.settings.cooldown,
        };
        match (&*state, worked) {
            (State::Closed { .. }, true) => {
                *state = State::Closed { failures: 0 };
                None
            }
            (State::Closed { failures }, false) => {
                let failures = failures + 1;
                if self.settings.failures > 0 && failures >= self.settings.failures {
                    *state = open;
                    Some(BreakerState::Open)
                } else {
                    *state = State::Closed { failures };
                    None
                }
            }
            (State::HalfOpen { .. }, true) => {
                *state = State::Closed { failures: 0 };
                Some(BreakerState::Closed)
            }
            (State::HalfOpen { .. }, false) => {
                *state = open;
                Some(BreakerState::Open)
            }
            // A call that started before the breaker opened changes nothing.
            (State::Open { .. }, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32) -> Breaker {
        Breaker::new(BreakerSettings {
            failures,
            cooldown: Duration::from_secs(30),
        })
    }

    #[test]
    fn it_opens_after_the_failures_in_a_row_and_a_success_resets_the_count() {
        let (b, now) = (breaker(3), Instant::now());
        assert_eq!(b.record(false, now), None);
        assert_eq!(b.record(false, now), None);
        assert_eq!(b.record(true, now), None, "the count starts again");
        assert_eq!(b.record(false, now), None);
        assert_eq!(b.record(false, now), None);
        assert_eq!(b.record(false, now), Some(BreakerState::Open));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.permit(now + Duration::from_secs(10)).0,
            Permit::Wait(Duration::from_secs(20))
        );
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_and_its_answer_decides() {
        let (b, now) = (breaker(1), Instant::now());
        b.record(false, now);
        let later = now + Duration::from_secs(30);
        assert_eq!(
            b.permit(later),
            (Permit::Probe, Some(BreakerState::HalfOpen))
        );
        assert_eq!(b.permit(later).0, Permit::Wait(PROBE_WAIT), "one probe");
        assert_eq!(b.record(false, later), Some(BreakerState::Open));
        let again = later + Duration::from_secs(30);
        assert_eq!(b.permit(again).0, Permit::Probe);
        assert_eq!(b.record(true, again), Some(BreakerState::Closed));
        assert_eq!(b.permit(again).0, Permit::Call);
    }

    #[test]
    fn an_unused_probe_lets_another_caller_probe() {
        let (b, now) = (breaker(1), Instant::now());
        b.record(false, now);
        let later = now + Duration::from_secs(31);
        let (permit, _) = b.permit(later);
        b.release(permit);
        assert_eq!(b.permit(later).0, Permit::Probe);
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_a_cool_down() {
        let (b, now) = (breaker(1), Instant::now());
        b.record(false, now);
        let later = now + Duration::from_secs(30);
        assert_eq!(b.permit(later).0, Permit::Probe);
        let lost = later + Duration::from_secs(30);
        assert_eq!(b.permit(lost).0, Permit::Probe);
    }

    #[test]
    fn with_no_threshold_it_never_opens() {
        let (b, now) = (breaker(0), Instant::now());
        for _ in 0..100 {
            assert_eq!(b.record(false, now), None);
        }
        assert_eq!(b.permit(now).0, Permit::Call);
    }
}
