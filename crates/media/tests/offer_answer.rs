//! RFC 3264 offer/answer: one test per rule.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sipact_media::offer_answer::*;
use sipact_media::sdp::*;

const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn engine() -> OfferAnswer {
    OfferAnswer::new(LocalMedia::audio(ME, 4000), 77)
}

fn offer(media: &str) -> SessionDescription {
    let text = format!("v=0\r\no=peer 9 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n{media}");
    SessionDescription::parse(text.as_bytes()).unwrap()
}

fn answer_to(o: SessionDescription, hold: bool) -> Result<SessionDescription, OfferAnswerError> {
    let mut e = engine();
    e.set_remote_offer(o, &[]);
    e.create_answer(hold, &[])
}

const AUDIO: &str = "m=audio 5000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

#[test]
fn offer_lists_capabilities_with_rtpmap_fmtp_ptime_and_sendrecv() {
    let mut e = engine();
    let o = e.create_offer(false, &[]);
    assert_eq!(o.origin.session_id, 77);
    assert_eq!(o.origin.session_version, 1);
    assert_eq!(o.connection.as_ref().unwrap().address, "192.0.2.1");
    let m = &o.media[0];
    assert_eq!((m.media.as_str(), m.port, m.proto.as_str()), ("audio", 4000, "RTP/AVP"));
    assert_eq!(m.formats, vec!["0", "8", "101"]);
    assert_eq!(m.rtpmap(0).unwrap().encoding, "PCMU");
    assert_eq!(m.rtpmap(8).unwrap().encoding, "PCMA");
    assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
    assert_eq!(m.fmtp(101), Some("0-15"));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(o.media_direction(0), Direction::SendRecv);
    assert_eq!(e.state(), SignalingState::HaveLocalOffer);
    // Optionally Opus, first.
    let mut e = OfferAnswer::new(LocalMedia::audio(ME, 4000).with_opus(), 1);
    let o = e.create_offer(false, &[]);
    assert_eq!(o.media[0].formats, vec!["111", "0", "8", "101"]);
    assert_eq!(o.media[0].rtpmap(111).unwrap().channels, Some(2));
}

#[test]
fn answer_intersects_codecs_keeping_offerer_numbers_and_order() {
    // RFC 3264 §6.1: the answer uses the offerer's payload type numbers, and
    // lists them in the offerer's order; unknown codecs are left out.
    let o = offer(
        "m=audio 5000 RTP/AVP 18 8 96 0 97\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\n\
         a=rtpmap:97 iLBC/8000\r\n",
    );
    let a = answer_to(o, false).unwrap();
    let m = &a.media[0];
    assert_eq!(m.port, 4000);
    assert_eq!(m.formats, vec!["8", "96", "0"]);
    assert_eq!(m.rtpmap(96).unwrap().encoding, "telephone-event");
    assert_eq!(m.fmtp(96), Some("0-16"));
}

#[test]
fn unsupported_m_lines_are_rejected_with_port_zero() {
    // RFC 3264 §6: "An offered stream MAY be rejected in the answer, for any
    // reason. If a stream is rejected ... the port number ... MUST be set to zero."
    let o = offer(&format!(
        "m=video 5002 RTP/AVP 31\r\n{AUDIO}m=audio 5004 RTP/AVP 0\r\nm=audio 5006 RTP/SAVP 0\r\nm=audio 0 RTP/AVP 0\r\n"
    ));
    let a = answer_to(o.clone(), false).unwrap();
    assert_eq!(a.media.len(), 5, "one m-line per offered m-line, in order");
    let ports: Vec<u16> = a.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![0, 4000, 0, 0, 0]);
    assert_eq!(a.media[0].media, "video");
    assert_eq!(a.media[0].formats, vec!["31"]);
    assert_eq!(a.media[3].proto, "RTP/SAVP");
}

#[test]
fn an_offer_with_nothing_acceptable_fails() {
    assert_eq!(answer_to(offer("m=audio 5000 RTP/AVP 18\r\n"), false), Err(OfferAnswerError::NoAcceptableMedia));
    // telephone-event alone is no audio codec.
    let te = offer("m=audio 5000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    assert_eq!(answer_to(te, false), Err(OfferAnswerError::NoAcceptableMedia));
    assert_eq!(answer_to(offer(""), false), Err(OfferAnswerError::NoAcceptableMedia));
}

#[test]
fn direction_answering_table() {
    // RFC 3264 §6.1.
    for (offered, hold, expected) in [
        ("sendonly", false, Direction::RecvOnly),
        ("recvonly", false, Direction::SendOnly),
        ("inactive", false, Direction::Inactive),
        ("sendrecv", false, Direction::SendRecv),
        ("sendrecv", true, Direction::SendOnly),
        ("sendonly", true, Direction::Inactive),
        ("recvonly", true, Direction::SendOnly),
        ("inactive", true, Direction::Inactive),
    ] {
        let a = answer_to(offer(&format!("{AUDIO}a={offered}\r\n")), hold).unwrap();
        assert_eq!(a.media_direction(0), expected, "offer {offered}, hold {hold}");
    }
    // A session-level direction is honoured.
    let mut o = offer(AUDIO);
    o.set_direction(Direction::SendOnly);
    assert_eq!(answer_to(o, false).unwrap().media_direction(0), Direction::RecvOnly);
}

#[test]
fn hold_and_unhold_offers() {
    // RFC 3264 §8.4: hold is a sendonly offer (inactive if the peer already
    // holds us); unhold offers sendrecv again.
    let mut e = engine();
    e.create_offer(false, &[]);
    let mut ans = offer(AUDIO);
    ans.media[0].set_direction(Direction::SendRecv);
    e.apply_answer(ans, &[]).unwrap();
    let hold = e.create_offer(true, &[]);
    assert_eq!(hold.media_direction(0), Direction::SendOnly);
    let mut ans = offer(AUDIO);
    ans.media[0].set_direction(Direction::RecvOnly);
    assert_eq!(e.apply_answer(ans, &[]).unwrap().direction, Direction::SendOnly);
    assert!(e.local_hold());
    // The peer now holds us too: its offer is inactive (we hold) and we answer inactive.
    let mut peer_hold = offer(AUDIO);
    peer_hold.media[0].set_direction(Direction::SendOnly);
    e.set_remote_offer(peer_hold, &[]);
    assert_eq!(e.create_answer(true, &[]).unwrap().media_direction(0), Direction::Inactive);
    assert!(e.remote_hold());
    // Both hold: our next offer is inactive.
    assert_eq!(e.create_offer(true, &[]).media_direction(0), Direction::Inactive);
    // Unhold: sendrecv.
    assert_eq!(e.create_offer(false, &[]).media_direction(0), Direction::SendRecv);
}

#[test]
fn origin_version_increments_only_when_the_description_changes() {
    // RFC 3264 §8: "...the version in the origin field MUST increment by one
    // from the previous SDP"; an unchanged re-send keeps it.
    let mut e = engine();
    let v1 = e.create_offer(false, &[]).origin.session_version;
    let again = e.create_offer(false, &[]);
    assert_eq!(again.origin.session_version, v1);
    let held = e.create_offer(true, &[]);
    assert_eq!(held.origin.session_version, v1 + 1);
    let resumed = e.create_offer(false, &[]);
    assert_eq!(resumed.origin.session_version, v1 + 2);
    // An answer is a description we send too.
    e.set_remote_offer(offer(&format!("{AUDIO}a=sendonly\r\n")), &[]);
    let ans = e.create_answer(false, &[]).unwrap();
    assert_eq!(ans.origin.session_version, v1 + 3);
    assert_eq!(ans.origin.session_id, 77);
}

#[test]
fn apply_answer_checks_it_against_the_offer() {
    let mut e = engine();
    assert_eq!(e.apply_answer(offer(AUDIO), &[]).unwrap_err(), OfferAnswerError::NoOfferPending);
    e.create_offer(false, &[]);
    let two = offer(&format!("{AUDIO}{AUDIO}"));
    assert_eq!(e.apply_answer(two, &[]).unwrap_err(), OfferAnswerError::AnswerMismatch { reason: "m-line count" });
    let foreign = offer("m=audio 5000 RTP/AVP 0 9\r\n");
    assert_eq!(
        e.apply_answer(foreign, &[]).unwrap_err(),
        OfferAnswerError::AnswerMismatch { reason: "payload type not offered" }
    );
    let rejected = offer("m=audio 0 RTP/AVP 0\r\n");
    assert_eq!(e.apply_answer(rejected, &[]).unwrap_err(), OfferAnswerError::NoAcceptableMedia);
}

#[test]
fn negotiated_addresses_codecs_and_direction() {
    let mut e = engine();
    e.create_offer(false, &[]);
    let n = e.apply_answer(offer(&format!("{AUDIO}a=recvonly\r\n")), &[]).unwrap().clone();
    assert_eq!(n.codec, Codec::pcmu());
    assert_eq!(n.telephone_event, Some(101));
    assert_eq!(n.remote_rtp, Some(SocketAddr::from(([198, 51, 100, 7], 5000))));
    assert_eq!(n.remote_rtcp, Some(SocketAddr::from(([198, 51, 100, 7], 5001))));
    // The peer only receives: we only send.
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(e.state(), SignalingState::Stable);

    // a=rtcp (RFC 3605) and a=rtcp-mux (RFC 5761).
    let mut e = engine();
    e.create_offer(false, &[]);
    let n = e.apply_answer(offer(&format!("{AUDIO}a=rtcp:6000 IN IP4 203.0.113.1\r\n")), &[]).unwrap();
    assert_eq!(n.remote_rtcp, Some(SocketAddr::from(([203, 0, 113, 1], 6000))));
    let mut e = engine();
    e.create_offer(false, &[]);
    let n = e.apply_answer(offer(&format!("{AUDIO}a=rtcp-mux\r\n")), &[]).unwrap();
    assert!(n.rtcp_mux);
    assert_eq!(n.remote_rtcp, n.remote_rtp);
    // An old-style hold address gives no remote address.
    let mut e = engine();
    e.create_offer(false, &[]);
    let mut held = offer(AUDIO);
    held.connection = Some(Connection::ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    assert_eq!(e.apply_answer(held, &[]).unwrap().remote_rtp, None);
}

#[test]
fn re_offer_keeps_the_m_line_layout() {
    // RFC 3264 §8: a new offer keeps every m-line; rejected ones stay at port 0.
    let mut e = engine();
    e.set_remote_offer(offer(&format!("m=video 5002 RTP/AVP 31\r\n{AUDIO}")), &[]);
    e.create_answer(false, &[]).unwrap();
    let o = e.create_offer(true, &[]);
    assert_eq!(o.media.len(), 2);
    assert_eq!((o.media[0].media.as_str(), o.media[0].port), ("video", 0));
    assert_eq!((o.media[1].media.as_str(), o.media[1].port), ("audio", 4000));
}

#[test]
fn modifiers_apply_in_order_to_outgoing_and_incoming_descriptions() {
    let strip_pcma: Modifier = Box::new(|d: &mut SessionDescription| {
        for m in &mut d.media {
            m.formats.retain(|f| f != "8");
            m.attributes.retain(|a| a.value.as_deref().is_none_or(|v| !v.starts_with("8 ")));
        }
    });
    let tag: Modifier = Box::new(|d: &mut SessionDescription| {
        let n = d.media[0].formats.len();
        d.attributes.push(Attribute::new("x-formats", n.to_string()));
    });
    let mut e = engine();
    let o = e.create_offer(false, &[strip_pcma, tag]);
    assert_eq!(o.media[0].formats, vec!["0", "101"]);
    assert!(o.media[0].rtpmap(8).is_some(), "static mapping still known");
    assert!(!o.to_string().contains("PCMA"));
    // The second modifier saw the first one's work.
    assert_eq!(o.attribute("x-formats"), Some("2"));

    // Incoming: drop telephone-event from the offer before we answer it.
    let no_dtmf: Modifier = Box::new(|d: &mut SessionDescription| d.media[0].formats.retain(|f| f != "101"));
    let mut e = engine();
    e.set_remote_offer(offer(AUDIO), &[no_dtmf]);
    let a = e.create_answer(false, &[]).unwrap();
    assert_eq!(a.media[0].formats, vec!["0", "8"]);
    assert_eq!(e.negotiated().unwrap().telephone_event, None);
}

#[test]
fn rollback_returns_to_stable() {
    let mut e = engine();
    e.create_offer(false, &[]);
    e.rollback();
    assert_eq!(e.state(), SignalingState::Stable);
    assert_eq!(e.apply_answer(offer(AUDIO), &[]).unwrap_err(), OfferAnswerError::NoOfferPending);
}
