//! Scenario: a basic call over a clean network and over 30 % loss.

use std::time::Duration;

use sipact_proto::ua::{InviteOptions, UaEvent};
use sipact_proto::{Cause, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

fn names(evs: &[&SessionEvent]) -> Vec<&'static str> {
    evs.iter()
        .map(|e| match e {
            SessionEvent::Progress { .. } => "progress",
            SessionEvent::Accepted { .. } => "accepted",
            SessionEvent::Rejected { .. } => "rejected",
            SessionEvent::Failed { .. } => "failed",
            SessionEvent::Terminated { .. } => "terminated",
            SessionEvent::Bye { .. } => "bye",
            SessionEvent::Cancel => "cancel",
            _ => "other",
        })
        .collect()
}

fn basic_call(p: &mut Pair) -> (u64, u64) {
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[1].incoming(0).is_some()), "INVITE never arrived");
    let b = p.sides[1].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[1].ua.progress(now, b, 180, false, false).expect("180");
    p.run_for(Duration::from_millis(200));
    let now = p.now;
    p.sides[1].ua.accept(now, b).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(60), |p| {
            p.sides[1].session_events(b).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
                && p.sides[0].session_events(a).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
        }),
        "call never established: {:?}",
        p.ladder()
    );
    let now = p.now;
    p.sides[0].ua.bye(now, a).expect("bye");
    assert!(
        p.run_until(Duration::from_secs(60), |p| p.sides[0].ua.session(a).is_none()
            && p.sides[1].ua.session(b).is_none()),
        "call never ended: {:?}",
        p.ladder()
    );
    (a, b)
}

#[test]
fn basic_call_ladder_and_events() {
    let mut p = Pair::new(NetConfig::default(), 1);
    let (a, b) = basic_call(&mut p);
    assert_eq!(
        p.ladder(),
        ["alice INVITE", "bob 100 INVITE", "bob 180 INVITE", "bob 200 INVITE", "alice ACK", "alice BYE", "bob 200 BYE"]
    );
    assert_eq!(names(&p.sides[0].session_events(a)), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&p.sides[1].session_events(b)), ["progress", "accepted", "bye", "terminated"]);
    assert!(matches!(p.sides[1].session_events(b).last(), Some(SessionEvent::Terminated { cause: Cause::Bye })));
    assert!(matches!(p.sides[1].events.first(), Some((_, UaEvent::Incoming { .. }))));
}

#[test]
fn basic_call_completes_under_30_percent_loss() {
    for seed in 1..=20 {
        let net = NetConfig { loss: 0.3, duplicate: 0.05, reorder: 0.1, ..NetConfig::default() };
        let mut p = Pair::new(net, seed);
        let (a, b) = basic_call(&mut p);
        let ea = p.sides[0].session_events(a);
        let eb = p.sides[1].session_events(b);
        assert_eq!(ea.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count(), 1, "seed {seed}");
        assert_eq!(eb.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count(), 1, "seed {seed}");
        assert!(p.net.lost > 0, "seed {seed}: nothing was lost");
    }
}
