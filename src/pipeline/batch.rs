//! Gathering items into batches inside an actor: the first item of a batch
//! waits at most a linger for others, and a full batch goes at once. Used by
//! the writers of the pipeline (outcomes to PostgreSQL, deliveries to Redis),
//! which decide what "write" means.

use std::time::Duration;

use actix::prelude::*;

/// How long the first item of a batch waits for others.
pub const LINGER: Duration = Duration::from_millis(10);
/// The most items one write takes.
pub const MAX_BATCH: usize = 2000;

/// Items waiting to be written, and the timer that writes them.
pub struct Batcher<T> {
    items: Vec<T>,
    timer: Option<SpawnHandle>,
}

impl<T> Default for Batcher<T> {
    fn default() -> Self {
        Batcher {
            items: Vec::new(),
            timer: None,
        }
    }
}

impl<T> Batcher<T> {
    /// Adds an item. Returns the batch when it is full; otherwise makes sure
    /// that `write` runs within [`LINGER`], where the actor takes the batch
    /// with [`Batcher::take`].
    pub fn push<A>(
        &mut self,
        item: T,
        ctx: &mut Context<A>,
        write: fn(&mut A, &mut Context<A>),
    ) -> Option<Vec<T>>
    where
        A: Actor<Context = Context<A>>,
    {
        self.items.push(item);
        if self.items.len() >= MAX_BATCH {
            return self.take(ctx);
        }
        if self.timer.is_none() {
            self.timer = Some(ctx.run_later(LINGER, write));
        }
        None
    }

    /// Takes what is waiting, if anything, and disarms the timer.
    pub fn take<A>(&mut self, ctx: &mut Context<A>) -> Option<Vec<T>>
    where
        A: Actor<Context = Context<A>>,
    {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        (!self.items.is_empty()).then(|| std::mem::take(&mut self.items))
    }

    /// Forgets the timer of a context that is gone (an actor's restart); the
    /// items stay, for the new context to write.
    pub fn restarted(&mut self) {
        self.timer = None;
    }
}
