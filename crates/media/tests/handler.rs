//! Session description handlers and the DescriptionHooks adapter.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sipact_media::handler::*;
use sipact_media::offer_answer::{LocalMedia, Modifier, SignalingState};
use sipact_media::rtp::RtpConfig;
use sipact_media::sdp::{Direction, SessionDescription};
use sipact_message::MediaType;
use sipact_proto::session::{Body, DescriptionHooks};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn sdp(body: &Body) -> SessionDescription {
    SessionDescription::parse(&body.data).unwrap()
}

#[test]
fn hooks_drive_two_none_handlers_through_offer_answer_and_hold() {
    let mut alice = HandlerHooks::new(NoneHandler::new(A, 4000, 1));
    let mut bob = HandlerHooks::new(NoneHandler::new(B, 5000, 2));
    let offer = alice.offer(false).unwrap();
    assert!(offer.content_type.is("application", "sdp"));
    let answer = bob.answer(&offer, false).unwrap();
    alice.apply_answer(&answer).unwrap();
    assert_eq!(alice.handler().direction(), Some(Direction::SendRecv));
    assert_eq!(bob.handler().direction(), Some(Direction::SendRecv));
    // A real SDP announcing a port.
    assert_eq!(sdp(&answer).media[0].port, 5000);

    // Alice holds: sendonly offer, recvonly answer.
    let hold = alice.offer(true).unwrap();
    assert_eq!(sdp(&hold).media_direction(0), Direction::SendOnly);
    let ans = bob.answer(&hold, false).unwrap();
    assert_eq!(sdp(&ans).media_direction(0), Direction::RecvOnly);
    alice.apply_answer(&ans).unwrap();
    assert!(alice.handler().is_on_hold());
    assert_eq!(alice.handler().direction(), Some(Direction::SendOnly));
    // Unhold.
    let unhold = alice.offer(false).unwrap();
    assert_eq!(sdp(&unhold).media_direction(0), Direction::SendRecv);
    alice.apply_answer(&bob.answer(&unhold, false).unwrap()).unwrap();
    assert_eq!(alice.handler().direction(), Some(Direction::SendRecv));
    // DTMF needs media: INFO instead.
    assert!(alice.handler_mut().send_dtmf("1", &DtmfOptions::default()).is_err());
}

#[test]
fn hooks_map_failures_to_sip_statuses() {
    let mut h = HandlerHooks::new(NoneHandler::new(A, 4000, 1));
    let json = Body { content_type: MediaType::new("application", "json"), data: "{}".into() };
    assert_eq!(h.answer(&json, false), Err(415));
    assert_eq!(h.answer(&Body::sdp("garbage"), false), Err(488));
    let video = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=video 5000 RTP/AVP 31\r\n";
    assert_eq!(h.answer(&Body::sdp(video), false), Err(488));
    assert_eq!(h.handler().signaling_state(), SignalingState::Stable, "a failed answer rolls back");
    // An answer with no offer outstanding.
    assert_eq!(h.apply_answer(&Body::sdp(video)), Err(488));
    // After close, everything fails.
    h.handler_mut().close();
    assert_eq!(h.offer(false), Err(488));
}

#[test]
fn hooks_apply_modifiers_both_ways() {
    let ptime40: Modifier = Box::new(|d: &mut SessionDescription| {
        for a in &mut d.media[0].attributes {
            if a.name == "ptime" {
                a.value = Some("40".into());
            }
        }
    });
    let only_pcma: Modifier = Box::new(|d: &mut SessionDescription| d.media[0].formats.retain(|f| f == "8"));
    let mut alice = HandlerHooks::new(NoneHandler::new(A, 4000, 1)).with_outgoing(ptime40);
    let mut bob = HandlerHooks::new(NoneHandler::new(B, 5000, 2)).with_incoming(only_pcma);
    let offer = alice.offer(false).unwrap();
    assert_eq!(sdp(&offer).media[0].ptime(), Some(40));
    let answer = bob.answer(&offer, false).unwrap();
    assert_eq!(sdp(&answer).media[0].formats, vec!["8"]);
}

#[test]
fn rtp_handler_configures_its_rtp_session() {
    let mut alice = HandlerHooks::new(RtpHandler::new(LocalMedia::audio(A, 4000), 1, RtpConfig::pcmu(11)));
    let mut bob = HandlerHooks::new(RtpHandler::new(LocalMedia::audio(B, 5000), 2, RtpConfig::pcmu(22)));
    // Bob prefers PCMA but answers in Alice's order: PCMU first.
    let offer = alice.offer(false).unwrap();
    let answer = bob.answer(&offer, false).unwrap();
    alice.apply_answer(&answer).unwrap();
    let rtp = alice.handler().rtp_session();
    assert_eq!(rtp.remote_rtp(), Some(SocketAddr::new(B, 5000)));
    assert_eq!(rtp.remote_rtcp(), Some(SocketAddr::new(B, 5001)));
    assert_eq!(rtp.config().payload_type, 0);
    assert_eq!(rtp.config().telephone_event, Some(101));
    assert_eq!(rtp.direction(), Direction::SendRecv);
    assert_eq!(bob.handler().rtp_session().remote_rtp(), Some(SocketAddr::new(A, 4000)));
    alice.handler_mut().send_dtmf("12#", &DtmfOptions::default()).unwrap();
    assert!(alice.handler().rtp_session().dtmf_pending());
    assert!(alice.handler_mut().send_dtmf("x", &DtmfOptions::default()).is_err());
    // Hold: Alice only sends; Bob only receives.
    let hold = alice.offer(true).unwrap();
    alice.apply_answer(&bob.answer(&hold, false).unwrap()).unwrap();
    assert_eq!(alice.handler().rtp_session().direction(), Direction::SendOnly);
    assert_eq!(bob.handler().rtp_session().direction(), Direction::RecvOnly);
}

#[test]
fn factories_make_handlers() {
    let ctx = HandlerContext { address: A, port: 4000, session_id: 5, ssrc: 9, inbound: false };
    for kind in [MediaKind::None, MediaKind::Rtp] {
        let mut h = BuiltinFactory(kind).create(&ctx).unwrap();
        assert!(h.has_description("application/sdp"));
        assert!(h.has_description("Application/SDP; charset=utf-8"));
        assert!(!h.has_description("application/json"));
        let d = h.get_description(&DescriptionOptions::default(), &[]).unwrap();
        assert_eq!(d.content_type, APPLICATION_SDP);
        assert_eq!(h.signaling_state(), SignalingState::HaveLocalOffer);
    }
    let custom = |c: &HandlerContext| -> Result<Box<dyn SessionDescriptionHandler>, HandlerError> {
        Ok(Box::new(NoneHandler::new(c.address, c.port + 2, c.session_id)))
    };
    let factory: Box<dyn SessionDescriptionHandlerFactory> = Box::new(custom);
    let h = factory.create(&ctx).unwrap();
    // Boxed handlers plug into the session engine.
    let mut hooks: Box<dyn DescriptionHooks> = Box::new(HandlerHooks::new(h));
    assert_eq!(sdp(&hooks.offer(false).unwrap()).media[0].port, 4002);
}

#[test]
fn hooks_ignore_an_answer_repeated_after_the_exchange() {
    // RFC 3261 §13.2.1: the answer in an unreliable 183 is the answer; the
    // 2xx repeats it and is ignored.
    let mut alice = HandlerHooks::new(NoneHandler::new(A, 4000, 1));
    let mut bob = HandlerHooks::new(NoneHandler::new(B, 5000, 2));
    let offer = alice.offer(false).unwrap();
    let answer = bob.answer(&offer, false).unwrap();
    alice.apply_answer(&answer).unwrap();
    assert_eq!(alice.apply_answer(&answer), Ok(()));
    assert_eq!(alice.handler().signaling_state(), SignalingState::Stable);
    assert_eq!(alice.handler().direction(), Some(Direction::SendRecv));
}
