//! Property: whatever the users do and whatever the network does (loss,
//! duplication, reordering), once everybody hangs up and the timers run
//! out, every session ended exactly once (its `Terminated` is its last
//! event), no session is left in either core, and the cores are idle: no
//! transaction, no deadline.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;
use sipact_proto::ua::{CoreConfig, InviteOptions, UaEvent};
use sipact_proto::{Rel100, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

#[derive(Debug, Clone, Copy)]
enum Act {
    Invite,
    Progress,
    Accept,
    Reject,
    Cancel,
    Bye,
    Hold,
    Unhold,
    HoldByUpdate,
    Dtmf,
    Terminate,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => Just(Act::Invite),
        2 => Just(Act::Progress),
        3 => Just(Act::Accept),
        1 => Just(Act::Reject),
        1 => Just(Act::Cancel),
        1 => Just(Act::Bye),
        1 => Just(Act::Hold),
        1 => Just(Act::Unhold),
        1 => Just(Act::HoldByUpdate),
        1 => Just(Act::Dtmf),
        1 => Just(Act::Terminate),
    ]
}

/// One user action: after `wait_ms`, `side` does `act` on its `pick`th live session.
#[derive(Debug, Clone, Copy)]
struct Step {
    wait_ms: u64,
    side: usize,
    act: Act,
    pick: usize,
}

fn step(max_wait_ms: u64) -> impl Strategy<Value = Step> {
    (0..max_wait_ms, 0usize..2, act(), 0usize..4).prop_map(|(wait_ms, side, act, pick)| Step {
        wait_ms,
        side,
        act,
        pick,
    })
}

fn net() -> impl Strategy<Value = NetConfig> {
    (0.0f64..0.3, 0.0f64..0.1, 0.0f64..0.3, 1u64..60).prop_map(|(loss, duplicate, reorder, delay)| NetConfig {
        loss,
        duplicate,
        reorder,
        delay: Duration::from_millis(delay),
        jitter: Duration::from_millis(80),
    })
}

fn apply(p: &mut Pair, s: Step, reliable: bool, created: &mut [BTreeSet<u64>; 2]) {
    let now = p.now;
    let other = 1 - s.side;
    if let Act::Invite = s.act {
        let target = p.sides[other].uri();
        if let Ok(id) = p.sides[s.side].ua.invite(now, &target, InviteOptions::default()) {
            created[s.side].insert(id);
        }
        return;
    }
    let ids = p.sides[s.side].ua.session_ids();
    if ids.is_empty() {
        return;
    }
    let id = ids[s.pick % ids.len()];
    let ua = &mut p.sides[s.side].ua;
    // Commands invalid in the session's state are refused; that is fine.
    let _ = match s.act {
        Act::Invite => Ok(()),
        Act::Progress if reliable => ua.progress(now, id, 183, true, true),
        Act::Progress => ua.progress(now, id, 180, false, false),
        Act::Accept => ua.accept(now, id),
        Act::Reject => ua.reject(now, id, 486),
        Act::Cancel => ua.cancel(now, id),
        Act::Bye => ua.bye(now, id),
        Act::Hold => ua.hold(now, id, true, false),
        Act::Unhold => ua.hold(now, id, false, false),
        Act::HoldByUpdate => ua.hold(now, id, true, true),
        Act::Dtmf => ua.dtmf(now, id, "12#", 100, 70),
        Act::Terminate => ua.terminate(now, id),
    };
}

fn check(p: &Pair, created: &[BTreeSet<u64>; 2]) -> Result<(), TestCaseError> {
    for (i, side) in p.sides.iter().enumerate() {
        let mut ids = created[i].clone();
        for (_, e) in &side.events {
            if let UaEvent::Incoming { session, .. } = e {
                ids.insert(*session);
            }
        }
        for id in ids {
            let evs = side.session_events(id);
            let ends = evs.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count();
            prop_assert_eq!(ends, 1, "side {} session {}: {:?}\n{:?}", i, id, evs, p.ladder());
            prop_assert!(
                matches!(evs.last(), Some(SessionEvent::Terminated { .. })),
                "side {} session {}: Terminated is not last: {:?}",
                i,
                id,
                evs
            );
        }
    }
    Ok(())
}

/// Plays `steps`, hangs everybody up, lets every timer run out and checks
/// the invariants.
fn run(mut p: Pair, steps: &[Step], reliable: bool) -> Result<(), TestCaseError> {
    let mut created: [BTreeSet<u64>; 2] = Default::default();
    for s in steps {
        p.run_for(Duration::from_millis(s.wait_ms));
        apply(&mut p, *s, reliable, &mut created);
    }
    // Everybody hangs up, again and again until nothing is left (a
    // terminate may be refused while a BYE or CANCEL is under way, or a
    // session may appear late when its INVITE was retransmitted).
    for _ in 0..8 {
        p.run_for(Duration::from_secs(5));
        for side in 0..2 {
            for id in p.sides[side].ua.session_ids() {
                let now = p.now;
                let _ = p.sides[side].ua.terminate(now, id);
            }
        }
        p.run_for(Duration::from_secs(35));
    }
    // Well past 64*T1, so Timers B, D, F, H, J, K, L and M have all run.
    p.run_for(Duration::from_secs(200));
    for (i, side) in p.sides.iter_mut().enumerate() {
        prop_assert!(side.ua.session_ids().is_empty(), "side {}: sessions left {:?}", i, side.ua.session_ids());
        prop_assert_eq!(side.transaction_count(), 0, "side {}: transactions left", i);
        prop_assert_eq!(side.poll_timeout(), None, "side {} still has a deadline", i);
    }
    prop_assert_eq!(p.net.in_flight(), 0);
    check(&p, &created)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_session_ends_once_and_the_cores_go_idle(
        seed in any::<u64>(),
        net in net(),
        steps in proptest::collection::vec(step(6000), 1..24),
    ) {
        run(Pair::new(net, seed), &steps, false)?;
    }

    /// The same with session timers (90 s, so refreshes and expiries happen
    /// during the run) and reliable provisionals with early media.
    #[test]
    fn with_session_timers_and_100rel(
        seed in any::<u64>(),
        net in net(),
        steps in proptest::collection::vec(step(30000), 1..24),
    ) {
        let cfg = |c: &mut CoreConfig| {
            c.session_expires = Some(90);
            c.rel100 = Rel100::Required;
        };
        run(Pair::with(net, seed, cfg, cfg), &steps, true)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The same with each core's transaction layer outside it, driven
    /// through transaction commands and events (as the actors run them).
    #[test]
    fn with_external_transaction_layers(
        seed in any::<u64>(),
        net in net(),
        steps in proptest::collection::vec(step(6000), 1..24),
    ) {
        run(Pair::external(net, seed, |_| {}, |_| {}), &steps, false)?;
    }
}
