//! `LeaseKeeper`: keeps the leases of this instance's in-flight claims alive.
//!
//! Takes no message from its peers: the `FetcherActor` registers each row it
//! claims in the shared [`Leases`] and hands the [`Held`] guard to the
//! `SenderActor` with the row, which lets go of it once the outcome is written
//! (or given up on). Every third of `LEASE_MS` the keeper extends the lease of
//! every row still held, with one statement fenced by the claim token, so a
//! lease expires only when its instance stopped renewing it: crashed, frozen,
//! or cut off from PostgreSQL. A held row that the statement finds under
//! another claim token was taken over (this instance stopped renewing for a
//! lease, as when frozen): it is logged and counted once and no longer
//! renewed, and its late outcome will be fenced out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::prelude::*;
use sqlx::PgPool;

use crate::{deadline, repository};

/// The rows this instance has claimed and not yet finished: id to claim token.
#[derive(Clone, Default)]
pub struct Leases(Arc<Mutex<HashMap<i64, i64>>>);

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, i64>> {
        // A panic elsewhere must not stop the renewals.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps the lease of this claim alive until the guard is dropped.
    pub fn hold(&self, id: i64, claim_token: i64) -> Held {
        self.lock().insert(id, claim_token);
        Held {
            leases: self.clone(),
            id,
            claim_token,
        }
    }

    /// The claims held now.
    fn snapshot(&self) -> Vec<(i64, i64)> {
        self.lock()
            .iter()
            .map(|(&id, &token)| (id, token))
            .collect()
    }

    /// Stops renewing a claim that another one took over; true when it was
    /// still held.
    fn release(&self, id: i64, claim_token: i64) -> bool {
        let mut held = self.lock();
        let was_held = held.get(&id) == Some(&claim_token);
        if was_held {
            held.remove(&id);
        }
        was_held
    }

    /// How many claims are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no claim is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One held claim; dropping it stops the renewal of its lease.
pub struct Held {
    leases: Leases,
    id: i64,
    claim_token: i64,
}

impl Drop for Held {
    fn drop(&mut self) {
        // A later claim of the same row by this instance holds it anew, and
        // is not released by this one.
        self.leases.release(self.id, self.claim_token);
    }
}

/// Renews the leases in [`Leases`] every third of the lease.
pub struct LeaseKeeper {
    pool: PgPool,
    leases: Leases,
    lease: Duration,
    /// Set while a renewal runs: a slow one is never doubled by the next.
    renewing: bool,
}

impl LeaseKeeper {
    /// Renews the claims of `leases` for `lease` at a time.
    pub fn new(pool: PgPool, leases: Leases, lease: Duration) -> Self {
        LeaseKeeper {
            pool,
            leases,
            lease,
            renewing: false,
        }
    }

    /// How often the leases are renewed: a third of the lease, so that two
    /// renewals in a row may fail before one expires.
    pub fn period(lease: Duration) -> Duration {
        lease / 3
    }

    fn renew(&mut self, ctx: &mut Context<Self>) {
        if self.renewing {
            return;
        }
        let held = self.leases.snapshot();
        if held.is_empty() {
            return;
        }
        self.renewing = true;
        let (pool, lease, claims) = (self.pool.clone(), self.lease, held.clone());
        // A renewal that cannot finish within its period is late already;
        // the next one tries again with whatever is held then.
        let renewal = async move {
            let renew = repository::renew_leases(&pool, &claims, lease);
            deadline::within(Self::period(lease), renew).await
        };
        ctx.spawn(renewal.into_actor(self).map(move |renewed, act, _| {
            act.renewing = false;
            match renewed {
                Ok(lost) => {
                    metrics::counter!("dispatcher_lease_renewals_total", "result" => "renewed")
                        .increment(1);
                    let tokens: HashMap<i64, i64> = held.into_iter().collect();
                    for id in lost {
                        // Released since the snapshot: its call is over.
                        let released = tokens.get(&id).is_some_and(|&token| act.leases.release(id, token));
                        if !released {
                            continue;
                        }
                        metrics::counter!("dispatcher_leases_lost_total").increment(1);
                        tracing::warn!(
                            message_id = id,
                            "lease lost: another claim owns the row; this call's outcome will be fenced out"
                        );
                    }
                }
                Err(error) => {
                    metrics::counter!("dispatcher_lease_renewals_total", "result" => "failed")
                        .increment(1);
                    tracing::warn!(error = %error, claims = act.leases.len(), "could not renew the leases; trying again");
                }
            }
        }));
    }
}

impl Actor for LeaseKeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Self::period(self.lease), |act, ctx| act.renew(ctx));
    }
}

impl Supervised for LeaseKeeper {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.renewing = false;
    }
}
