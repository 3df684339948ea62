//! The one timer each actor keeps: armed at the sans-IO core's next
//! deadline (`poll_timeout`), re-armed only when that deadline changes.

use std::time::Instant;

use actix::prelude::*;

/// An actor's armed deadline, if any.
#[derive(Debug, Default)]
pub(crate) struct Deadline(Option<(Instant, SpawnHandle)>);

impl Deadline {
    /// Arms the timer for `next` (none: disarmed). When it fires, the
    /// deadline is cleared (`field` reaches it in the actor) and `fire` runs.
    pub(crate) fn arm<A>(
        &mut self,
        next: Option<Instant>,
        ctx: &mut Context<A>,
        field: fn(&mut A) -> &mut Deadline,
        fire: fn(&mut A, &mut Context<A>),
    ) where
        A: Actor<Context = Context<A>>,
    {
        if let Some((armed, h)) = self.0 {
            if Some(armed) == next {
                return;
            }
            ctx.cancel_future(h);
            self.0 = None;
        }
        if let Some(at) = next {
            let delay = at.saturating_duration_since(Instant::now());
            let h = ctx.run_later(delay, move |act, ctx| {
                field(act).0 = None;
                fire(act, ctx);
            });
            self.0 = Some((at, h));
        }
    }
}
