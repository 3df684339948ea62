//! Two WebRTC handlers wired back to back in memory, on synthetic time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::audio::{AudioSource, RATE_8K, Tone, goertzel_power};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn sdp(d: &Description) -> String {
    String::from_utf8(d.body.to_vec()).unwrap()
}

/// Two handlers and a clock; datagrams go straight from one to the other.
struct Pair {
    a: WebRtcHandler,
    b: WebRtcHandler,
    now: Instant,
    a_audio: Vec<i16>,
    b_audio: Vec<i16>,
    a_events: Vec<WebRtcEvent>,
    b_events: Vec<WebRtcEvent>,
    a_to_b: u64,
    b_to_a: u64,
}

impl Pair {
    fn new(config_a: WebRtcConfig, config_b: WebRtcConfig) -> Pair {
        let now = Instant::now();
        Pair {
            a: WebRtcHandler::new(config_a, &[addr(40000)], now).unwrap(),
            b: WebRtcHandler::new(config_b, &[addr(40002)], now).unwrap(),
            now,
            a_audio: Vec::new(),
            b_audio: Vec::new(),
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_to_b: 0,
            b_to_a: 0,
        }
    }

    /// A offers, B answers, A applies the answer.
    fn negotiate(&mut self, hold: bool) -> (String, String) {
        let offer = self.a.get_description(&DescriptionOptions { hold }, &[]).unwrap();
        self.b.set_description(&offer, &DescriptionOptions::default(), &[]).unwrap();
        let answer = self.b.get_description(&DescriptionOptions::default(), &[]).unwrap();
        self.a.set_description(&answer, &DescriptionOptions { hold }, &[]).unwrap();
        (sdp(&offer), sdp(&answer))
    }

    /// Moves queued datagrams and events until both sides are quiet.
    fn shuttle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                assert_eq!(t.destination, addr(40002), "A sends only to B's candidate");
                self.a_to_b += 1;
                self.b.handle_input(self.now, t.source, t.destination, &t.data);
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit() {
                assert_eq!(t.destination, addr(40000), "B sends only to A's candidate");
                self.b_to_a += 1;
                self.a.handle_input(self.now, t.source, t.destination, &t.data);
                moved = true;
            }
            while let Some(e) = self.a.poll_event() {
                match e {
                    WebRtcEvent::Audio { samples } => self.a_audio.extend(samples),
                    e => self.a_events.push(e),
                }
            }
            while let Some(e) = self.b.poll_event() {
                match e {
                    WebRtcEvent::Audio { samples } => self.b_audio.extend(samples),
                    e => self.b_events.push(e),
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Advances time by `d` in 5 ms steps, running both handlers' timers.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(5);
            for h in [&mut self.a, &mut self.b] {
                if h.poll_timeout().is_some_and(|t| t <= self.now) {
                    h.handle_timeout(self.now);
                }
            }
            self.shuttle();
        }
    }

    fn connect(&mut self) {
        self.negotiate(false);
        for _ in 0..400 {
            self.run(Duration::from_millis(5));
            if self.a.is_connected() && self.b.is_connected() {
                return;
            }
        }
        panic!("no connection: {:?} {:?}", self.a_events, self.b_events);
    }

    /// Sends `frames` 20 ms frames each way: A a tone, B silence-free 1 kHz.
    fn talk(&mut self, frames: usize, a: &mut Tone, b: &mut Tone) {
        let mut fa = vec![0i16; 160];
        let mut fb = vec![0i16; 160];
        for _ in 0..frames {
            a.read(&mut fa);
            b.read(&mut fb);
            self.a.send_audio(self.now, &fa);
            self.b.send_audio(self.now, &fb);
            self.run(Duration::from_millis(20));
        }
    }
}

#[test]
fn offer_and_answer_are_webrtc_style() {
    let mut p = Pair::new(WebRtcConfig::default(), WebRtcConfig::default());
    let (offer, answer) = p.negotiate(false);
    for s in [&offer, &answer] {
        assert!(s.contains("UDP/TLS/RTP/SAVPF"), "{s}");
        assert!(s.contains("a=fingerprint:sha-256 "), "{s}");
        assert!(s.contains("a=ice-ufrag:") && s.contains("a=ice-pwd:"), "{s}");
        assert!(s.contains("a=rtcp-mux"), "{s}");
        assert!(s.contains("a=rtpmap:0 PCMU/8000"), "{s}");
        assert!(s.contains("a=rtpmap:101 telephone-event/8000"), "{s}");
        assert!(s.contains("a=candidate:"), "{s}");
    }
    assert!(offer.contains("a=setup:actpass"), "{offer}");
    assert!(answer.contains("a=setup:active") || answer.contains("a=setup:passive"), "{answer}");
    assert!(offer.contains("a=rtpmap:111 opus/48000/2"), "{offer}");
    // G.711 is preferred: PCMU comes first on the m-line.
    let m = answer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(m.ends_with("UDP/TLS/RTP/SAVPF 0 8 111 101"), "{m}");
    assert_eq!(p.a.signaling_state(), SignalingState::Stable);
    assert_eq!(p.a.direction(), Some(Direction::SendRecv));
    assert_eq!(p.b.direction(), Some(Direction::SendRecv));
}

#[test]
fn tone_flows_both_ways_over_dtls_srtp() {
    let mut p = Pair::new(WebRtcConfig::default(), WebRtcConfig::default());
    p.connect();
    assert!(p.a_events.contains(&WebRtcEvent::Connected));
    assert!(p.b_events.contains(&WebRtcEvent::Connected));
    let mut a = Tone::new(RATE_8K, 440.0, 8000);
    let mut b = Tone::new(RATE_8K, 1000.0, 8000);
    p.talk(50, &mut a, &mut b);
    assert!(p.b_audio.len() >= 40 * 160, "B got {} samples", p.b_audio.len());
    assert!(p.a_audio.len() >= 40 * 160, "A got {} samples", p.a_audio.len());
    let tail = &p.b_audio[p.b_audio.len() - 1600..];
    let (f440, f1000) = (goertzel_power(tail, RATE_8K, 440.0), goertzel_power(tail, RATE_8K, 1000.0));
    assert!(f440 > 100.0 * f1000, "B hears 440 Hz: {f440} vs {f1000}");
    let tail = &p.a_audio[p.a_audio.len() - 1600..];
    let (f440, f1000) = (goertzel_power(tail, RATE_8K, 440.0), goertzel_power(tail, RATE_8K, 1000.0));
    assert!(f1000 > 100.0 * f440, "A hears 1 kHz: {f1000} vs {f440}");
}

#[test]
fn rfc4733_digits_arrive_in_order() {
    let mut p = Pair::new(WebRtcConfig::default(), WebRtcConfig::default());
    p.connect();
    assert!(p.a.has_telephone_event());
    let opts = DtmfOptions { duration: Duration::from_millis(100), inter_tone_gap: Duration::from_millis(60) };
    p.a.send_dtmf("12#", &opts).unwrap();
    assert!(p.a.send_dtmf("x", &opts).is_err());
    let mut a = Tone::new(RATE_8K, 440.0, 1000);
    let mut b = Tone::new(RATE_8K, 1000.0, 1000);
    p.talk(60, &mut a, &mut b);
    let digits: Vec<(char, u32)> = p
        .b_events
        .iter()
        .filter_map(|e| match e {
            WebRtcEvent::Dtmf { digit, duration } => Some((*digit, *duration)),
            _ => None,
        })
        .collect();
    assert_eq!(digits.iter().map(|d| d.0).collect::<String>(), "12#", "{digits:?}");
    assert!(digits.iter().all(|d| d.1 == 100), "{digits:?}");
}

#[test]
fn hold_stops_the_held_direction_and_unhold_resumes_it() {
    let mut p = Pair::new(WebRtcConfig::default(), WebRtcConfig::default());
    p.connect();
    let mut a = Tone::new(RATE_8K, 440.0, 8000);
    let mut b = Tone::new(RATE_8K, 1000.0, 8000);
    p.talk(10, &mut a, &mut b);

    // A holds: offers sendonly, B answers recvonly.
    let (offer, answer) = p.negotiate(true);
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(p.a.is_on_hold());
    assert_eq!(p.a.direction(), Some(Direction::SendOnly));
    assert_eq!(p.b.direction(), Some(Direction::RecvOnly));
    let heard_by_a = p.a_audio.len();
    let heard_by_b = p.b_audio.len();
    p.talk(25, &mut a, &mut b);
    assert_eq!(p.a_audio.len(), heard_by_a, "B stopped sending to the holder");
    assert!(p.b_audio.len() >= heard_by_b + 20 * 160, "A keeps sending (music on hold)");

    // Unhold: sendrecv both ways again, on the same connection.
    let (offer, answer) = p.negotiate(false);
    assert!(offer.contains("a=sendrecv") && answer.contains("a=sendrecv"), "{offer}\n{answer}");
    let heard_by_a = p.a_audio.len();
    p.talk(25, &mut a, &mut b);
    assert!(p.a_audio.len() >= heard_by_a + 20 * 160, "B's audio resumed");
}

#[test]
fn unchanged_reoffer_resends_the_description_and_keeps_media() {
    let mut p = Pair::new(WebRtcConfig::default(), WebRtcConfig::default());
    p.connect();
    let first = p.a.get_description(&DescriptionOptions::default(), &[]).unwrap();
    let first = sdp(&first);
    assert!(first.contains("a=setup:actpass"), "{first}");
    p.b.set_description(
        &Description { content_type: APPLICATION_SDP.into(), body: first.clone().into_bytes().into() },
        &DescriptionOptions::default(),
        &[],
    )
    .unwrap();
    let answer = p.b.get_description(&DescriptionOptions::default(), &[]).unwrap();
    p.a.set_description(&answer, &DescriptionOptions::default(), &[]).unwrap();
    let mut a = Tone::new(RATE_8K, 440.0, 8000);
    let mut b = Tone::new(RATE_8K, 1000.0, 8000);
    let before = p.b_audio.len();
    p.talk(10, &mut a, &mut b);
    assert!(p.b_audio.len() > before, "media continues after the session refresh");
}

#[test]
fn data_channel_opens_and_carries_messages() {
    let config = WebRtcConfig { data_channel: Some("chat".into()), ..WebRtcConfig::default() };
    let mut p = Pair::new(config, WebRtcConfig::default());
    let (offer, _) = p.negotiate(false);
    assert!(offer.contains("m=application") && offer.contains("webrtc-datachannel"), "{offer}");
    p.run(Duration::from_secs(2));
    assert!(p.a_events.iter().any(|e| matches!(e, WebRtcEvent::ChannelOpen { .. })), "{:?}", p.a_events);
    assert!(p.b_events.iter().any(|e| *e == WebRtcEvent::ChannelOpen { label: "chat".into() }), "{:?}", p.b_events);
    p.a.send_data(b"hello").unwrap();
    p.run(Duration::from_millis(100));
    assert!(p.b_events.contains(&WebRtcEvent::ChannelData { data: b"hello".to_vec() }), "{:?}", p.b_events);
}

#[test]
fn a_loopback_handler_drops_remote_candidates_it_cannot_reach() {
    let now = Instant::now();
    let mut browser = WebRtcHandler::new(WebRtcConfig::default(), &[addr(40004)], now).unwrap();
    let offer = sdp(&browser.get_description(&DescriptionOptions::default(), &[]).unwrap());
    let line = offer.lines().find(|l| l.starts_with("a=candidate:")).unwrap().to_owned();
    let extra = format!(
        "{}\r\n{}\r\n",
        line.replace("127.0.0.1", "192.0.2.2"),
        line.replace("127.0.0.1", "0f9e8a1c-7a4e-4f5c-9c3a-1d2b3c4d5e6f.local")
    );
    let offer = offer.replacen(&format!("{line}\r\n"), &format!("{line}\r\n{extra}"), 1);
    let mut ua = WebRtcHandler::new(WebRtcConfig::default(), &[addr(40006)], now).unwrap();
    let d = Description { content_type: APPLICATION_SDP.into(), body: offer.into_bytes().into() };
    ua.set_description(&d, &DescriptionOptions::default(), &[]).unwrap();
    ua.get_description(&DescriptionOptions::default(), &[]).unwrap();
    ua.handle_timeout(now + Duration::from_millis(50));
    let mut destinations = Vec::new();
    while let Some(t) = ua.poll_transmit() {
        destinations.push(t.destination);
    }
    assert!(!destinations.is_empty());
    assert!(destinations.iter().all(|d| *d == addr(40004)), "{destinations:?}");
    // A datagram from off the machine is ignored, not answered.
    ua.handle_input(now, "192.0.2.2:5000".parse().unwrap(), addr(40006), &[0u8; 20]);
    assert_eq!(ua.ignored_datagrams(), 1);
    assert!(ua.poll_transmit().is_none());
}

#[test]
fn a_plain_rtp_offer_is_not_acceptable() {
    let mut h = WebRtcHandler::new(WebRtcConfig::default(), &[addr(40008)], Instant::now()).unwrap();
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let d = Description { content_type: APPLICATION_SDP.into(), body: offer.as_bytes().to_vec().into() };
    let e = h.set_description(&d, &DescriptionOptions::default(), &[]).unwrap_err();
    assert_eq!(e.status(), 488, "{e}");
    assert_eq!(h.signaling_state(), SignalingState::Stable);
    let e = h
        .set_description(
            &Description { content_type: "text/plain".into(), body: b"x".to_vec().into() },
            &DescriptionOptions::default(),
            &[],
        )
        .unwrap_err();
    assert_eq!(e.status(), 415);
}

#[test]
fn silence_from_the_peer_raises_the_media_timeout() {
    let config = WebRtcConfig { rtp_timeout: Some(Duration::from_millis(500)), ..WebRtcConfig::default() };
    let mut p = Pair::new(config, WebRtcConfig::default());
    p.connect();
    let mut a = Tone::new(RATE_8K, 440.0, 8000);
    let mut b = Tone::new(RATE_8K, 1000.0, 8000);
    p.talk(10, &mut a, &mut b);
    assert!(!p.a_events.contains(&WebRtcEvent::Timeout));
    // B goes quiet; A keeps sending.
    let mut fa = vec![0i16; 160];
    for _ in 0..40 {
        a.read(&mut fa);
        p.a.send_audio(p.now, &fa);
        p.run(Duration::from_millis(20));
    }
    assert_eq!(p.a_events.iter().filter(|e| **e == WebRtcEvent::Timeout).count(), 1, "{:?}", p.a_events);
    assert!(!p.b_events.contains(&WebRtcEvent::Timeout));
}

#[test]
fn closed_handler_refuses_work() {
    let mut h = WebRtcHandler::new(WebRtcConfig::default(), &[addr(40010)], Instant::now()).unwrap();
    h.close();
    assert_eq!(h.get_description(&DescriptionOptions::default(), &[]).unwrap_err(), HandlerError::Closed);
    assert!(h.poll_timeout().is_none());
}

#[test]
fn a_peer_that_never_sends_times_out_but_a_resumed_one_gets_a_fresh_wait() {
    let config = WebRtcConfig { rtp_timeout: Some(Duration::from_millis(400)), ..WebRtcConfig::default() };
    let mut p = Pair::new(config.clone(), config);
    p.connect();
    // B holds A for longer than the timeout: A expects nothing meanwhile.
    let offer = p.b.get_description(&DescriptionOptions { hold: true }, &[]).unwrap();
    p.a.set_description(&offer, &DescriptionOptions::default(), &[]).unwrap();
    let answer = p.a.get_description(&DescriptionOptions::default(), &[]).unwrap();
    p.b.set_description(&answer, &DescriptionOptions { hold: true }, &[]).unwrap();
    assert_eq!(p.a.direction(), Some(Direction::RecvOnly));
    let mut a = Tone::new(RATE_8K, 440.0, 8000);
    let mut b = Tone::new(RATE_8K, 1000.0, 8000);
    let mut fb = vec![0i16; 160];
    for _ in 0..40 {
        b.read(&mut fb);
        p.b.send_audio(p.now, &fb);
        p.run(Duration::from_millis(20));
    }
    assert!(!p.a_events.contains(&WebRtcEvent::Timeout) && !p.b_events.contains(&WebRtcEvent::Timeout));
    // B resumes: A now expects B's media again and B sends: no timeout.
    let offer = p.b.get_description(&DescriptionOptions::default(), &[]).unwrap();
    p.a.set_description(&offer, &DescriptionOptions::default(), &[]).unwrap();
    let answer = p.a.get_description(&DescriptionOptions::default(), &[]).unwrap();
    p.b.set_description(&answer, &DescriptionOptions::default(), &[]).unwrap();
    p.talk(30, &mut a, &mut b);
    assert!(!p.a_events.contains(&WebRtcEvent::Timeout) && !p.b_events.contains(&WebRtcEvent::Timeout));
    // Now only A talks: A, which hears nothing, times out; B does not.
    let mut fa = vec![0i16; 160];
    for _ in 0..40 {
        a.read(&mut fa);
        p.a.send_audio(p.now, &fa);
        p.run(Duration::from_millis(20));
    }
    assert!(p.a_events.contains(&WebRtcEvent::Timeout), "{:?}", p.a_events);
    assert!(!p.b_events.contains(&WebRtcEvent::Timeout));
}

fn engine_failed(e: &HandlerError) -> bool {
    matches!(e, HandlerError::WebRtc(m) if m.contains("engine failed"))
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn browser_offer() -> String {
        let mut h = WebRtcHandler::new(
            WebRtcConfig { data_channel: Some("x".into()), ..WebRtcConfig::default() },
            &[addr(40100)],
            Instant::now(),
        )
        .unwrap();
        sdp(&h.get_description(&DescriptionOptions::default(), &[]).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// A damaged offer is refused with an error (488), never a panic
        /// inside str0m: the guard would turn one into "engine failed".
        #[test]
        fn damaged_offers_are_refused_cleanly(
            cut in 0usize..4000,
            at in 0usize..4000,
            junk in proptest::collection::vec(any::<u8>(), 0..24),
            drop_line in 0usize..40,
        ) {
            let offer = browser_offer();
            let mut lines: Vec<&str> = offer.split("\r\n").collect();
            if drop_line < lines.len() {
                lines.remove(drop_line);
            }
            let mut bytes = lines.join("\r\n").into_bytes();
            let at = at.min(bytes.len());
            bytes.splice(at..at, junk);
            bytes.truncate(cut.max(1));
            let mut h = WebRtcHandler::new(WebRtcConfig::default(), &[addr(40102)], Instant::now()).unwrap();
            let d = Description { content_type: APPLICATION_SDP.into(), body: bytes.into() };
            match h.set_description(&d, &DescriptionOptions::default(), &[]) {
                Ok(()) => {
                    let a = h.get_description(&DescriptionOptions::default(), &[]);
                    prop_assert!(a.is_ok(), "{:?}", a.err());
                }
                Err(e) => {
                    prop_assert!(!engine_failed(&e), "str0m panicked");
                    prop_assert_eq!(e.status(), 488);
                    prop_assert_eq!(h.signaling_state(), SignalingState::Stable);
                }
            }
        }
    }

    /// Garbage datagrams from the peer's address, of every first-byte class
    /// (STUN, DTLS, RTP/RTCP, other), leave a connected call connected and
    /// its audio flowing.
    #[test]
    fn garbage_datagrams_do_not_disturb_a_call() {
        let mut p = Pair::new(WebRtcConfig::default(), WebRtcConfig::default());
        p.connect();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for i in 0..2000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = (rng % 300) as usize;
            let mut d: Vec<u8> = (0..len).map(|k| (rng >> (k % 56)) as u8 ^ k as u8).collect();
            if let Some(first) = d.first_mut() {
                // RFC 7983 ranges: 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP.
                *first = [0u8, 1, 22, 23, 128, 144, 200, 129][(i % 8) as usize];
            }
            p.b.handle_input(p.now, addr(40000), addr(40002), &d);
        }
        assert!(p.b.is_connected() && p.b.poll_timeout().is_some(), "still alive");
        let mut a = Tone::new(RATE_8K, 440.0, 8000);
        let mut b = Tone::new(RATE_8K, 1000.0, 8000);
        let before = p.b_audio.len();
        p.talk(10, &mut a, &mut b);
        assert!(p.b_audio.len() >= before + 8 * 160, "audio still flows");
    }
}

#[test]
fn modifiers_apply_to_outgoing_and_incoming_webrtc_descriptions() {
    let mut p = Pair::new(WebRtcConfig::default(), WebRtcConfig::default());
    let tag: Modifier = Box::new(|d: &mut SessionDescription| {
        d.attributes.push(crate::sdp::Attribute::new("x-by", "modifier"));
    });
    // Incoming: drop PCMU from what B is offered, so B answers with PCMA.
    let no_pcmu: Modifier = Box::new(|d: &mut SessionDescription| {
        for m in &mut d.media {
            m.formats.retain(|f| f != "0");
            m.attributes.retain(|a| !(a.value.as_deref().is_some_and(|v| v.starts_with("0 "))));
        }
    });
    let offer = p.a.get_description(&DescriptionOptions::default(), std::slice::from_ref(&tag)).unwrap();
    assert!(sdp(&offer).contains("a=x-by:modifier"), "{}", sdp(&offer));
    p.b.set_description(&offer, &DescriptionOptions::default(), std::slice::from_ref(&no_pcmu)).unwrap();
    let answer = p.b.get_description(&DescriptionOptions::default(), &[]).unwrap();
    let m = sdp(&answer).lines().find(|l| l.starts_with("m=audio")).unwrap().to_owned();
    assert!(m.ends_with("UDP/TLS/RTP/SAVPF 8 111 101"), "{m}");
    p.a.set_description(&answer, &DescriptionOptions::default(), &[]).unwrap();
    for _ in 0..400 {
        p.run(Duration::from_millis(5));
        if p.a.is_connected() && p.b.is_connected() {
            break;
        }
    }
    let mut a = Tone::new(RATE_8K, 440.0, 8000);
    let mut b = Tone::new(RATE_8K, 1000.0, 8000);
    p.talk(20, &mut a, &mut b);
    let tail = &p.b_audio[p.b_audio.len().saturating_sub(1600)..];
    assert!(tail.len() == 1600, "PCMA audio arrived: {}", p.b_audio.len());
    assert!(goertzel_power(tail, RATE_8K, 440.0) > 100.0 * goertzel_power(tail, RATE_8K, 1000.0));
}

#[test]
fn webrtc_offers_are_told_from_plain_ones() {
    let mut h = WebRtcHandler::new(WebRtcConfig::default(), &[addr(40200)], Instant::now()).unwrap();
    let offer = h.get_description(&DescriptionOptions::default(), &[]).unwrap();
    assert!(is_webrtc_offer(&offer.body));
    let plain = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert!(!is_webrtc_offer(plain.as_bytes()));
    assert!(crate::rtp::is_rtp_or_rtcp(&[0x80, 0]) && !crate::rtp::is_rtp_or_rtcp(&[0x16, 0xfe]));
    assert!(!crate::rtp::is_rtp_or_rtcp(&[0, 1]) && !crate::rtp::is_rtp_or_rtcp(&[]));
}
