//! Tier 4: transfers (RFC 3515 REFER, RFC 3891 Replaces, RFC 3892
//! Referred-By) between three user agents over UDP on 127.0.0.1.

mod common;

use common::*;
use sipact_actors::{Cause, SessionEvent};
use sipact_message::{Header, Method};

fn refer_progress(evs: &[SessionEvent]) -> Vec<(u16, bool)> {
    evs.iter()
        .filter_map(|e| match e {
            SessionEvent::ReferProgress { status, terminated } => Some((*status, *terminated)),
            _ => None,
        })
        .collect()
}

#[actix_rt::test]
async fn blind_transfer() {
    let alice = start("alice");
    let bob = start("bob");
    let carol = start("carol");
    let mut bob_inc = bob.incoming();
    let mut carol_inc = carol.incoming();
    let mut bob_tap = Tap::new(&bob);
    let mut carol_tap = Tap::new(&carol);
    // Alice calls Bob; Bob transfers her to Carol.
    let mut call = establish(&alice, &bob, &mut bob_inc).await;
    call.b.refer(&carol.uri()).await.unwrap();
    let refer = events_until(&mut call.a_ev, &mut call.a_seen, |e| matches!(e, SessionEvent::Refer { .. })).await;
    let SessionEvent::Refer { request } = refer else { unreachable!() };
    let a2 = call.a.follow_refer(&request).await.unwrap();
    let mut a2_ev = a2.events();
    let c = next_incoming(&mut carol_inc).await;
    let mut c_ev = c.events();
    // Carol sees who referred the call.
    let by = c
        .request()
        .unwrap()
        .headers
        .iter()
        .find_map(|h| match h {
            Header::ReferredBy(a) => Some(a.uri.to_string()),
            _ => None,
        })
        .expect("Referred-By");
    assert_eq!(by, bob.uri());
    carol_tap.wait_for("INVITE", |w| w.is_request(false, &Method::Invite)).await;
    assert!(carol_tap.requests(false, &Method::Invite)[0].0.headers.iter().any(|h| matches!(h, Header::ReferredBy(_))));
    c.accept().await.unwrap();
    let (mut a2_seen, mut c_seen) = (Vec::new(), Vec::new());
    events_until(&mut a2_ev, &mut a2_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut c_ev, &mut c_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    // Bob hears how it went: 202 to the REFER, then NOTIFY 100, then 200.
    events_until(&mut call.b_ev, &mut call.b_seen, |e| {
        matches!(e, SessionEvent::ReferProgress { terminated: true, .. })
    })
    .await;
    assert_eq!(refer_progress(&call.b_seen), [(202, false), (100, false), (200, true)]);
    bob_tap.wait_count("two NOTIFYs answered", 2, |w| w.is_response(true, 200, &Method::Notify)).await;
    let notifies = bob_tap.requests(false, &Method::Notify);
    assert_eq!(notifies.len(), 2, "{:?}", bob_tap.labels());
    for ((n, _), (line, state)) in
        notifies.iter().zip([("SIP/2.0 100 Trying", "active"), ("SIP/2.0 200 OK", "terminated")])
    {
        assert!(n.headers.content_type().is_some_and(|c| c.is("message", "sipfrag")));
        assert_eq!(body_str(&n.body).trim_end(), line);
        let ss = n
            .headers
            .iter()
            .find_map(|h| match h {
                Header::SubscriptionState(s) => Some(s.value.to_string()),
                _ => None,
            })
            .expect("Subscription-State");
        assert_eq!(ss, state);
        assert!(n.headers.iter().any(|h| matches!(h, Header::Event(e) if &*e.value == "refer")));
    }
    let l = bob_tap.labels();
    assert!(bob_tap.position("> REFER").unwrap() < bob_tap.position("< 202 REFER").unwrap(), "{l:?}");

    // Bob leaves; Alice and Carol talk, then hang up.
    call.b.bye().await.unwrap();
    call.finish().await;
    a2.bye().await.unwrap();
    events_to_end(&mut a2_ev, &mut a2_seen).await;
    events_to_end(&mut c_ev, &mut c_seen).await;
    assert_eq!(names(&call.a_seen), ["accepted", "refer", "bye", "terminated"]);
    assert_eq!(names(&call.b_seen), ["accepted", "refer-progress", "refer-progress", "refer-progress", "terminated"]);
    assert_eq!(names(&a2_seen), ["accepted", "terminated"]);
    assert_eq!(names(&c_seen), ["accepted", "bye", "terminated"]);
}

#[actix_rt::test]
async fn attended_transfer_replaces_the_consultation_call() {
    let alice = start("alice");
    let bob = start("bob");
    let carol = start("carol");
    let mut bob_inc = bob.incoming();
    let mut carol_inc = carol.incoming();
    let mut carol_tap = Tap::new(&carol);
    // Alice ↔ Bob, then Bob ↔ Carol (consultation); Bob joins Alice to Carol.
    let mut ab = establish(&alice, &bob, &mut bob_inc).await;
    let mut bc = establish(&bob, &carol, &mut carol_inc).await;
    ab.b.refer_session(&carol.uri(), &bc.a).await.unwrap();
    let refer = events_until(&mut ab.a_ev, &mut ab.a_seen, |e| matches!(e, SessionEvent::Refer { .. })).await;
    let SessionEvent::Refer { request } = refer else { unreachable!() };
    let a2 = ab.a.follow_refer(&request).await.unwrap();
    let mut a2_ev = a2.events();
    let c2 = next_incoming(&mut carol_inc).await;
    let mut c2_ev = c2.events();
    // Carol's new session replaces her session with Bob.
    assert_eq!(c2.replaces(), Some(bc.b.id()));
    carol_tap
        .wait_for("INVITE with Replaces", |w| {
            w.request().is_some_and(|r| {
                r.method == Method::Invite && r.headers.iter().any(|h| matches!(h, Header::Replaces(_)))
            })
        })
        .await;
    let rep = c2
        .request()
        .unwrap()
        .headers
        .iter()
        .find_map(|h| match h {
            Header::Replaces(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let bc_req = bc.b.request().unwrap().clone();
    assert_eq!(&*rep.value, bc_req.headers.call_id().unwrap());
    assert_eq!(rep.params.value("to-tag"), bc.b.local_identity().unwrap().tag());
    assert_eq!(rep.params.value("from-tag"), bc.b.remote_identity().unwrap().tag());
    assert!(c2.request().unwrap().headers.iter().any(|h| matches!(h, Header::ReferredBy(_))));

    c2.accept().await.unwrap();
    let (mut a2_seen, mut c2_seen) = (Vec::new(), Vec::new());
    events_until(&mut a2_ev, &mut a2_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut c2_ev, &mut c2_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    // The replaced session learns it, then ends (Carol BYEs Bob).
    bc.finish().await;
    let replaced = bc.b_seen.iter().find_map(|e| match e {
        SessionEvent::Replaced { new_session } => Some(*new_session),
        _ => None,
    });
    assert_eq!(replaced, Some(c2.id()));
    assert_eq!(names(&bc.b_seen), ["accepted", "replaced", "terminated"]);
    assert_eq!(names(&bc.a_seen), ["accepted", "bye", "terminated"]);
    carol_tap.drain();
    let byes = carol_tap.requests(true, &Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].0.headers.call_id(), bc_req.headers.call_id());

    // Bob's transfer succeeded; he leaves Alice.
    events_until(&mut ab.b_ev, &mut ab.b_seen, |e| matches!(e, SessionEvent::ReferProgress { terminated: true, .. }))
        .await;
    assert_eq!(refer_progress(&ab.b_seen).last(), Some(&(200, true)));
    ab.b.bye().await.unwrap();
    ab.finish().await;
    a2.bye().await.unwrap();
    events_to_end(&mut a2_ev, &mut a2_seen).await;
    events_to_end(&mut c2_ev, &mut c2_seen).await;
    assert!(matches!(c2_seen.last(), Some(SessionEvent::Terminated { cause: Cause::Bye })));
}
