//! Scenario: digest authentication (RFC 3261 §22, RFC 7616) of an INVITE
//! and of REGISTER against a registrar, with refresh and unregistration
//! (RFC 3261 §10).

use std::time::Duration;

use sipact_message::{Header, Method, Request, Response, SipMessage};
use sipact_proto::ua::{InviteOptions, UaEvent};
use sipact_proto::{Cause, Credentials, RegEvent, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

const ALICE: usize = 0;
const BOB: usize = 1;
const REALM: &str = "sipact.test";

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

fn requests(p: &Pair, m: Method) -> Vec<Request> {
    p.wire()
        .into_iter()
        .filter_map(|(_, w)| match w {
            SipMessage::Request(r) if r.method == m => Some(r),
            _ => None,
        })
        .collect()
}

fn responses(p: &Pair, status: u16) -> Vec<Response> {
    p.wire()
        .into_iter()
        .filter_map(|(_, w)| match w {
            SipMessage::Response(r) if r.status == status => Some(r),
            _ => None,
        })
        .collect()
}

fn authorization(r: &Request) -> Option<&sipact_message::Auth> {
    r.headers.iter().find_map(|h| match h {
        Header::Authorization(a) => Some(a),
        _ => None,
    })
}

fn challenged(r: &Response) -> bool {
    r.headers.iter().any(|h| matches!(h, Header::WwwAuthenticate(a) if a.param("realm") == Some(REALM)))
}

fn pair(password: &str, registrar: bool) -> Pair {
    let password = password.to_owned();
    Pair::with(
        NetConfig::default(),
        41,
        move |a| a.credentials.push(Credentials::new("alice", password)),
        move |b| {
            b.auth_realm = Some(REALM.to_owned());
            b.auth_users.push(("alice".to_owned(), "secret".to_owned()));
            b.registrar = registrar;
        },
    )
}

fn reg_events(p: &Pair) -> Vec<RegEvent> {
    p.sides[ALICE]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::Registration(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn invite_is_challenged_then_retried_with_credentials() {
    let mut p = pair("secret", false);
    let target = p.sides[BOB].uri();
    let now = p.now;
    let a = p.sides[ALICE].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(10), |p| p.sides[BOB].incoming(0).is_some()), "{:?}", p.ladder());
    let b = p.sides[BOB].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[BOB].ua.progress(now, b, 180, false, false).expect("180");
    p.run_for(Duration::from_millis(100));
    let now = p.now;
    p.sides[BOB].ua.accept(now, b).expect("accept");
    assert!(p.run_until(Duration::from_secs(10), |p| {
        p.sides[BOB].session_events(b).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
    }));
    let now = p.now;
    p.sides[ALICE].ua.bye(now, a).expect("bye");
    assert!(p.run_until(Duration::from_secs(10), |p| p.sides[ALICE].ua.session(a).is_none()
        && p.sides[BOB].ua.session(b).is_none()));

    assert_eq!(
        p.ladder(),
        [
            "alice INVITE",
            "bob 100 INVITE",
            "bob 401 INVITE",
            "alice ACK",
            "alice INVITE",
            "bob 100 INVITE",
            "bob 180 INVITE",
            "bob 200 INVITE",
            "alice ACK",
            "alice BYE",
            "bob 200 BYE"
        ]
    );
    // The challenge, and the retry: same Call-ID and From tag, next CSeq,
    // new branch, credentials for the realm.
    let c401 = &responses(&p, 401)[0];
    assert!(challenged(c401), "401 without WWW-Authenticate for {REALM}");
    let invites = requests(&p, Method::Invite);
    let (first, retry) = (&invites[0], &invites[1]);
    assert!(authorization(first).is_none());
    let auth = authorization(retry).expect("Authorization on the retry");
    assert_eq!(auth.param("username"), Some("alice"));
    assert_eq!(auth.param("realm"), Some(REALM));
    assert_eq!(retry.headers.call_id(), first.headers.call_id());
    assert_eq!(retry.headers.from().and_then(|f| f.tag()), first.headers.from().and_then(|f| f.tag()));
    assert_eq!(retry.headers.cseq().map(|c| c.seq), first.headers.cseq().map(|c| c.seq + 1));
    assert_ne!(retry.headers.via().and_then(|v| v.branch()), first.headers.via().and_then(|v| v.branch()));
    assert_eq!(retry.body, first.body, "same offer");
    // The ACK of the 401 is the transaction's (CSeq 1); the ACK of the 2xx
    // has the retry's CSeq and carries the credentials too.
    let acks = requests(&p, Method::Ack);
    assert_eq!(acks[0].headers.cseq().map(|c| c.seq), first.headers.cseq().map(|c| c.seq));
    assert_eq!(acks[0].headers.via().and_then(|v| v.branch()), first.headers.via().and_then(|v| v.branch()));
    assert_eq!(acks[1].headers.cseq().map(|c| c.seq), retry.headers.cseq().map(|c| c.seq));
    assert!(authorization(&acks[1]).is_some());

    // The challenge is invisible to the users: one session each, one call.
    assert_eq!(names(&p.sides[ALICE].session_events(a)), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&p.sides[BOB].session_events(b)), ["progress", "accepted", "bye", "terminated"]);
    assert_eq!(p.sides[BOB].incoming(1), None);
}

#[test]
fn wrong_password_ends_with_authentication_error() {
    let mut p = pair("wrong", false);
    let target = p.sides[BOB].uri();
    let now = p.now;
    let a = p.sides[ALICE].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(10), |p| p.sides[ALICE].ua.session(a).is_none()), "{:?}", p.ladder());
    p.run_for(Duration::from_secs(40));
    assert_eq!(
        p.ladder(),
        [
            "alice INVITE",
            "bob 100 INVITE",
            "bob 401 INVITE",
            "alice ACK",
            "alice INVITE",
            "bob 100 INVITE",
            "bob 401 INVITE",
            "alice ACK"
        ],
        "one retry, then give up"
    );
    assert!(authorization(&requests(&p, Method::Invite)[1]).is_some());
    let ea = p.sides[ALICE].session_events(a);
    assert_eq!(names(&ea), ["rejected", "failed", "terminated"]);
    assert!(
        matches!(ea[0], SessionEvent::Rejected { response, cause: Cause::AuthenticationError } if response.status == 401)
    );
    assert!(matches!(ea[2], SessionEvent::Terminated { cause: Cause::AuthenticationError }));
    assert_eq!(p.sides[BOB].incoming(0), None, "the callee never saw the call");
    assert!(p.sides[ALICE].transaction_count() == 0 && p.sides[BOB].transaction_count() == 0);
}

#[test]
fn register_refresh_and_unregister_with_digest() {
    let mut p = pair("secret", true);
    let registrar = format!("sip:{}", p.sides[BOB].addr);
    let aor = p.sides[ALICE].ua.config().aor().uri.to_string();
    let t0 = p.now;
    p.sides[ALICE].ua.register(t0, &registrar, 120).expect("register");
    assert!(p.run_until(Duration::from_secs(10), |p| !reg_events(p).is_empty()));
    assert_eq!(p.ladder(), ["alice REGISTER", "bob 401 REGISTER", "alice REGISTER", "bob 200 REGISTER"]);
    assert!(matches!(reg_events(&p)[..], [RegEvent::Registered { expires: 120, .. }]), "{:?}", reg_events(&p));
    assert!(p.sides[BOB].ua.binding(&aor).is_some(), "registrar keeps the binding for {aor}");
    let ok = &responses(&p, 200)[0];
    assert!(ok.headers.contacts().any(|c| c.addr().and_then(|a| a.expires()) == Some(120)));

    // Refresh before expiry: 30 s early for a 120 s binding.
    p.run_for(Duration::from_secs(100));
    let regs = requests(&p, Method::Register);
    assert_eq!(regs.len(), 3, "{:?}", p.ladder());
    let at = p.wire_at();
    let refresh_at = at
        .iter()
        .filter(|(_, _, m)| matches!(m, SipMessage::Request(r) if r.method == Method::Register))
        .map(|(t, _, _)| *t - t0)
        .nth(2)
        .expect("refresh");
    assert!(refresh_at > Duration::from_secs(60) && refresh_at < Duration::from_secs(120), "{refresh_at:?}");
    // §10.2.4: same Call-ID, CSeq one higher than the last REGISTER.
    let (last, refresh) = (&regs[1], &regs[2]);
    assert_eq!(refresh.headers.call_id(), regs[0].headers.call_id());
    assert_eq!(refresh.headers.call_id(), last.headers.call_id());
    assert_eq!(refresh.headers.cseq().map(|c| c.seq), last.headers.cseq().map(|c| c.seq + 1));
    assert!(authorization(refresh).is_some(), "credentials reused on the refresh");
    assert_eq!(
        p.ladder()[4..],
        ["alice REGISTER", "bob 200 REGISTER"],
        "the refresh goes through without a new challenge"
    );
    assert_eq!(reg_events(&p).iter().filter(|e| matches!(e, RegEvent::Registered { .. })).count(), 2);

    // Unregister: Expires 0, the binding goes away.
    let now = p.now;
    p.sides[ALICE].ua.unregister(now).expect("unregister");
    assert!(p.run_until(Duration::from_secs(10), |p| reg_events(p).last() == Some(&RegEvent::Unregistered)));
    let regs = requests(&p, Method::Register);
    let un = regs.last().expect("unregister");
    assert_eq!(un.headers.expires(), Some(0));
    assert_eq!(un.headers.call_id(), regs[0].headers.call_id());
    assert_eq!(un.headers.cseq().map(|c| c.seq), regs[regs.len() - 2].headers.cseq().map(|c| c.seq + 1));
    assert!(p.sides[BOB].ua.binding(&aor).is_none());
    // No more refreshes.
    let n = p.ladder().len();
    p.run_for(Duration::from_secs(600));
    assert_eq!(p.ladder().len(), n, "{:?}", &p.ladder()[n..]);
}

#[test]
fn registration_stays_up_for_an_hour_across_nonce_expiry() {
    // Nonces live 300 s; refreshes every 90 s must survive stale challenges.
    let mut p = pair("secret", true);
    let registrar = format!("sip:{}", p.sides[BOB].addr);
    let now = p.now;
    p.sides[ALICE].ua.register(now, &registrar, 120).expect("register");
    p.run_for(Duration::from_secs(3600));
    let evs = reg_events(&p);
    assert!(!evs.iter().any(|e| matches!(e, RegEvent::Failed { .. })), "{evs:?}\n{:?}", p.ladder());
    let registered = evs.iter().filter(|e| matches!(e, RegEvent::Registered { .. })).count();
    assert!(registered >= 3600 / 90, "{registered} registrations in an hour");
    // CSeq strictly increases over the whole Call-ID.
    let seqs: Vec<u32> =
        requests(&p, Method::Register).iter().filter_map(|r| r.headers.cseq().map(|c| c.seq)).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[test]
fn register_too_brief_is_retried_with_min_expires() {
    let mut p = Pair::with(
        NetConfig::default(),
        42,
        |a| a.credentials.push(Credentials::new("alice", "secret")),
        |b| {
            b.auth_realm = Some(REALM.to_owned());
            b.auth_users.push(("alice".to_owned(), "secret".to_owned()));
            b.registrar = true;
            b.registrar_min_expires = Some(600);
        },
    );
    let registrar = format!("sip:{}", p.sides[BOB].addr);
    let now = p.now;
    p.sides[ALICE].ua.register(now, &registrar, 60).expect("register");
    assert!(p.run_until(Duration::from_secs(10), |p| !reg_events(p).is_empty()));
    assert_eq!(
        p.ladder(),
        [
            "alice REGISTER",
            "bob 401 REGISTER",
            "alice REGISTER",
            "bob 423 REGISTER",
            "alice REGISTER",
            "bob 200 REGISTER"
        ]
    );
    let c423 = &responses(&p, 423)[0];
    assert!(c423.headers.iter().any(|h| matches!(h, Header::MinExpires(600))));
    let regs = requests(&p, Method::Register);
    assert_eq!(regs.iter().map(|r| r.headers.expires()).collect::<Vec<_>>(), [Some(60), Some(60), Some(600)]);
    let seqs: Vec<u32> = regs.iter().filter_map(|r| r.headers.cseq().map(|c| c.seq)).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(regs.iter().all(|r| r.headers.call_id() == regs[0].headers.call_id()));
    assert!(matches!(reg_events(&p)[..], [RegEvent::Registered { expires: 600, .. }]), "{:?}", reg_events(&p));
}
