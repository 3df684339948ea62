//! Scenario: session timers (RFC 4028). The refresher re-INVITEs (or
//! UPDATEs) at half the session interval; a peer that stops refreshing gets
//! a BYE before the session expires.

use std::time::{Duration, Instant};

use sipact_message::{Method, SipMessage};
use sipact_proto::ua::{CoreConfig, InviteOptions, UaEvent};
use sipact_proto::{Cause, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

/// Alice (asking for session timers of `se` s) calls Bob, Bob answers.
/// Returns (alice's id, bob's id, the instant Bob accepted).
fn establish(p: &mut Pair) -> (u64, u64, Instant) {
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[1].incoming(0).is_some()), "INVITE never arrived");
    let b = p.sides[1].incoming(0).expect("incoming");
    let t_accept = p.now;
    p.sides[1].ua.accept(t_accept, b).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(60), |p| accepted(p, 0, a) && accepted(p, 1, b)),
        "call never established: {:?}",
        p.ladder()
    );
    (a, b, t_accept)
}

fn accepted(p: &Pair, side: usize, id: u64) -> bool {
    p.sides[side].session_events(id).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
}

fn count(p: &Pair, side: usize, id: u64, f: impl Fn(&SessionEvent) -> bool) -> usize {
    p.sides[side].session_events(id).into_iter().filter(|e| f(e)).count()
}

/// In-dialog requests of `method` (To has a tag), with send time.
fn in_dialog(p: &Pair, method: Method) -> Vec<(Instant, std::net::SocketAddr, sipact_message::Request)> {
    p.wire_at()
        .into_iter()
        .filter_map(|(t, from, m)| match m {
            SipMessage::Request(r) if r.method == method && r.headers.to().and_then(|t| t.tag()).is_some() => {
                Some((t, from, r))
            }
            _ => None,
        })
        .collect()
}

fn first_200_invite(p: &Pair) -> sipact_message::Response {
    p.wire()
        .into_iter()
        .find_map(|(_, m)| match m {
            SipMessage::Response(r)
                if r.status == 200 && r.headers.cseq().is_some_and(|c| c.method == Method::Invite) =>
            {
                Some(r)
            }
            _ => None,
        })
        .expect("a 200 to the INVITE")
}

fn timers(se: u32) -> impl FnOnce(&mut CoreConfig) {
    move |c: &mut CoreConfig| c.session_expires = Some(se)
}

fn close(a: Instant, b: Instant, tol: Duration) -> bool {
    a.max(b) - a.min(b) <= tol
}

#[test]
fn refresher_reinvites_at_half_interval() {
    let mut p = Pair::with(NetConfig::default(), 11, timers(120), |_| {});
    let (a, b, t_accept) = establish(&mut p);
    // The INVITE asks for 120 s; the 200 names the refresher (Bob, the UAS,
    // as Alice left the choice to him) and requires the extension.
    let invite = p.wire().into_iter().find_map(|(_, m)| match m {
        SipMessage::Request(r) if r.method == Method::Invite => Some(r),
        _ => None,
    });
    let invite = invite.expect("INVITE");
    assert_eq!(invite.headers.session_expires().map(|s| s.delta), Some(120));
    let ok = first_200_invite(&p);
    let se = ok.headers.session_expires().expect("Session-Expires in 200");
    assert_eq!(se.delta, 120);
    assert_eq!(se.refresher(), Some("uas"));
    assert!(ok.headers.requires("timer"));
    assert_eq!(p.sides[0].ua.session(a).and_then(|s| s.session_interval()), Some(120));
    assert_eq!(p.sides[1].ua.session(b).and_then(|s| s.session_interval()), Some(120));

    // Three refresh periods.
    p.run_for(Duration::from_secs(200));
    let reinvites = in_dialog(&p, Method::Invite);
    assert!(reinvites.len() >= 3, "{:?}", p.ladder());
    let bob = p.sides[1].addr;
    // Only Bob refreshes, every 60 s from his 2xx.
    for (i, (t, from, r)) in reinvites.iter().enumerate() {
        assert_eq!(*from, bob, "refresh {i} came from the non-refresher: {:?}", p.ladder());
        let due = t_accept + Duration::from_secs(60) * (i as u32 + 1);
        assert!(close(*t, due, Duration::from_millis(100)), "refresh {i} at {:?}, due {:?}", *t - p.t0, due - p.t0);
        // The refresh keeps the interval and names the refresher relative
        // to this transaction: Bob sends it, so he is the UAC here.
        let se = r.headers.session_expires().expect("Session-Expires in refresh");
        assert_eq!(se.delta, 120);
        assert_eq!(se.refresher(), Some("uac"), "refresh {i}");
        assert!(!r.body.is_empty(), "a refresh re-INVITE carries an offer");
    }
    // The 200s to the refreshes keep Bob as refresher.
    let oks: Vec<_> = p
        .wire()
        .into_iter()
        .filter_map(|(from, m)| match m {
            SipMessage::Response(r)
                if r.status == 200
                    && from == p.sides[0].addr
                    && r.headers.cseq().is_some_and(|c| c.method == Method::Invite) =>
            {
                Some(r)
            }
            _ => None,
        })
        .collect();
    assert_eq!(oks.len(), reinvites.len());
    for ok in &oks {
        assert_eq!(ok.headers.session_expires().and_then(|s| s.refresher()), Some("uac"));
    }
    assert_eq!(count(&p, 1, b, |e| matches!(e, SessionEvent::Refreshed)), reinvites.len());
    assert_eq!(count(&p, 0, a, |e| matches!(e, SessionEvent::Refreshed)), reinvites.len());
    // No hold change from a refresh, and the call is still up.
    assert_eq!(count(&p, 0, a, |e| matches!(e, SessionEvent::HoldChanged { .. })), 0);
    assert_eq!(count(&p, 1, b, |e| matches!(e, SessionEvent::HoldChanged { .. })), 0);
    assert_eq!(p.sides[0].ua.session_ids(), [a]);
    assert_eq!(p.sides[1].ua.session_ids(), [b]);
    assert!(in_dialog(&p, Method::Bye).is_empty());
}

#[test]
fn refresher_updates_when_configured() {
    let mut p = Pair::with(NetConfig::default(), 12, timers(120), |c| c.refresh_with_update = true);
    let (a, b, t_accept) = establish(&mut p);
    p.run_for(Duration::from_secs(130));
    let updates = in_dialog(&p, Method::Update);
    assert_eq!(updates.len(), 2, "{:?}", p.ladder());
    assert!(in_dialog(&p, Method::Invite).is_empty(), "refresh_with_update: no re-INVITE {:?}", p.ladder());
    for (i, (t, from, r)) in updates.iter().enumerate() {
        assert_eq!(*from, p.sides[1].addr);
        let due = t_accept + Duration::from_secs(60) * (i as u32 + 1);
        assert!(close(*t, due, Duration::from_millis(100)), "UPDATE {i} at {:?}", *t - p.t0);
        assert_eq!(r.headers.session_expires().map(|s| s.delta), Some(120));
    }
    let ladder = p.ladder();
    assert_eq!(ladder[4..], ["bob UPDATE", "alice 200 UPDATE", "bob UPDATE", "alice 200 UPDATE"], "{ladder:?}");
    assert_eq!(count(&p, 1, b, |e| matches!(e, SessionEvent::Refreshed)), 2);
    assert_eq!(count(&p, 0, a, |e| matches!(e, SessionEvent::Refreshed)), 2);
    assert_eq!(p.sides[0].ua.session_ids(), [a]);
}

#[test]
fn non_refresher_hangs_up_when_refreshes_stop() {
    let mut p = Pair::with(NetConfig::default(), 13, timers(120), |_| {});
    let (a, b, _) = establish(&mut p);
    // Alice's Expire timer runs from the 2xx she received.
    let t_alice_2xx = p.sides[0]
        .events
        .iter()
        .find(|(_, e)| matches!(e, UaEvent::Session { session, event: SessionEvent::Accepted { .. } } if *session == a))
        .map(|(t, _)| *t)
        .expect("accepted");
    p.run_for(Duration::from_secs(1));
    // A partition: nothing gets through any more.
    p.net.config_mut().loss = 1.0;
    assert!(
        p.run_until(Duration::from_secs(200), |p| p.sides[0].ua.session_ids().is_empty()),
        "alice never gave up: {:?}",
        p.ladder()
    );
    // RFC 4028 §10: BYE at interval - min(32, interval/3) = 88 s, before the
    // 120 s expiry.
    let byes = in_dialog(&p, Method::Bye);
    let (t_bye, from, _) = byes.iter().find(|(_, f, _)| *f == p.sides[0].addr).expect("alice's BYE");
    assert_eq!(*from, p.sides[0].addr);
    assert!(
        close(*t_bye, t_alice_2xx + Duration::from_secs(88), Duration::from_millis(100)),
        "BYE at {:?}",
        *t_bye - p.t0
    );
    assert!(*t_bye < t_alice_2xx + Duration::from_secs(120));
    let ea = p.sides[0].session_events(a);
    assert!(matches!(ea.last(), Some(SessionEvent::Terminated { cause: Cause::Expires })), "{ea:?}");
    assert_eq!(ea.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count(), 1);
    // Bob, the refresher, tried at 60 s and gave up when his re-INVITE timed out.
    assert!(p.run_until(Duration::from_secs(100), |p| p.sides[1].ua.session_ids().is_empty()));
    let eb = p.sides[1].session_events(b);
    assert!(matches!(eb.last(), Some(SessionEvent::Terminated { .. })), "{eb:?}");
    assert_eq!(eb.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count(), 1);
}

#[test]
fn interval_too_small_gets_422_and_a_retry_with_min_se() {
    // Bob will not refresh more often than every 300 s (RFC 4028 §8.1).
    let mut p = Pair::with(NetConfig::default(), 14, timers(120), |c| c.min_se = 300);
    let (a, b, _) = establish(&mut p);
    let ladder = p.ladder();
    assert_eq!(
        ladder[..6],
        ["alice INVITE", "bob 100 INVITE", "bob 422 INVITE", "alice ACK", "alice INVITE", "bob 100 INVITE"],
        "{ladder:?}"
    );
    let wire = p.wire();
    let r422 = wire
        .iter()
        .find_map(|(_, m)| match m {
            SipMessage::Response(r) if r.status == 422 => Some(r.clone()),
            _ => None,
        })
        .expect("422");
    let min = r422.headers.iter().find_map(|h| match h {
        sipact_message::Header::MinSe(d) => Some(d.delta),
        _ => None,
    });
    assert_eq!(min, Some(300));
    let invites: Vec<_> = wire
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Invite => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(invites.len(), 2);
    assert_eq!(invites[0].headers.session_expires().map(|s| s.delta), Some(120));
    // The retry asks for the bigger interval, with a new CSeq and branch, same Call-ID and From tag.
    assert_eq!(invites[1].headers.session_expires().map(|s| s.delta), Some(300));
    assert_eq!(invites[1].headers.cseq().map(|c| c.seq), Some(2));
    assert_ne!(invites[0].headers.via().and_then(|v| v.branch()), invites[1].headers.via().and_then(|v| v.branch()));
    assert_eq!(invites[0].headers.call_id(), invites[1].headers.call_id());
    assert_eq!(invites[0].headers.from().and_then(|f| f.tag()), invites[1].headers.from().and_then(|f| f.tag()));
    // Only the acceptable INVITE reached Bob's user; the session runs with 300 s.
    assert!(p.sides[1].incoming(1).is_none());
    assert_eq!(p.sides[0].ua.session(a).and_then(|s| s.session_interval()), Some(300));
    assert_eq!(p.sides[1].ua.session(b).and_then(|s| s.session_interval()), Some(300));
    assert_eq!(first_200_invite(&p).headers.session_expires().map(|s| s.delta), Some(300));
    assert!(!p.sides[0].session_events(a).iter().any(|e| matches!(e, SessionEvent::Failed { .. })));
}
