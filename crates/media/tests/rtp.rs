//! RTP/RTCP packets, G.711, RFC 4733 and the RtpSession rules.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sipact_media::rtp::*;
use sipact_media::sdp::Direction;

const FRAME: Duration = Duration::from_millis(20);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

#[test]
fn g711_round_trip_error_bounds() {
    // Every 16-bit sample: the quantisation error grows with the magnitude
    // (logarithmic companding) and is at most half a step of its segment.
    let mut worst_u = 0.0f64;
    let mut worst_a = 0.0f64;
    for s in i16::MIN..=i16::MAX {
        let x = i32::from(s);
        let u = i32::from(ulaw_decode(ulaw_encode(s)));
        let a = i32::from(alaw_decode(alaw_encode(s)));
        let eu = (x - u).abs();
        let ea = (x - a).abs();
        // μ-law: step 2^(e+3) in segment e, clip at 32635.
        assert!(eu <= (x.abs() + 132) / 32 + 1 || x.abs() > 32635, "ulaw {s} -> {u}");
        // A-law: step 16 in segments 0-1, then 2^(seg+4).
        assert!(ea <= 16.max(x.abs() / 32 + 8), "alaw {s} -> {a}");
        if x.abs() > 256 {
            worst_u = worst_u.max(f64::from(eu) / f64::from(x.abs()));
            worst_a = worst_a.max(f64::from(ea) / f64::from(x.abs()));
        }
    }
    assert!(worst_u < 0.07 && worst_a < 0.07, "relative error {worst_u} {worst_a}");
    // Decoded values are fixed points: decode(encode(decode(c))) == decode(c).
    for c in 0..=255u8 {
        assert_eq!(ulaw_decode(ulaw_encode(ulaw_decode(c))), ulaw_decode(c));
        assert_eq!(alaw_decode(alaw_encode(alaw_decode(c))), alaw_decode(c));
    }
    // Silence codes.
    assert_eq!(ulaw_encode(0), 0xff);
    assert_eq!(alaw_encode(0), 0xd5);
    assert_eq!(G711::Pcma.decode(&G711::Pcma.encode(&[1000, -1000])), vec![1008, -1008]);
}

#[test]
fn rtp_header_with_csrc_extension_and_padding() {
    let mut p = RtpPacket::new(0, 65535, 0xdead_beef, 0x1234_5678, vec![1, 2, 3]);
    p.marker = true;
    p.csrc = vec![7, 8];
    p.extension = Some(RtpExtension { profile: 0xbede, data: vec![0x10, 0xff, 0, 0].into() });
    p.padding = 4;
    let bytes = p.to_bytes();
    assert_eq!(bytes.len(), 12 + 8 + 8 + 3 + 4);
    assert_eq!(bytes[0], 0x80 | 0x20 | 0x10 | 2);
    assert_eq!(bytes[1], 0x80);
    assert_eq!(*bytes.last().unwrap(), 4);
    assert_eq!(RtpPacket::parse(&bytes).unwrap(), p);
    // Errors, not panics.
    assert_eq!(RtpPacket::parse(&bytes[..11]), Err(RtpError::TooShort { len: 11, need: 12 }));
    let mut v1 = bytes.clone();
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
    let mut pad = RtpPacket::new(0, 1, 2, 3, vec![]).to_bytes();
    pad[0] |= 0x20;
    pad.push(200);
    assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding(200)));
}

#[test]
fn rtcp_compound_round_trip() {
    let block = ReportBlock {
        ssrc: 9,
        fraction_lost: 25,
        cumulative_lost: -3,
        highest_sequence: 70_000,
        jitter: 12,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    };
    let packets = vec![
        RtcpPacket::SenderReport {
            ssrc: 1,
            ntp: 0x0102_0304_0506_0708,
            rtp_timestamp: 160,
            packet_count: 50,
            octet_count: 8000,
            reports: vec![block],
        },
        RtcpPacket::ReceiverReport { ssrc: 1, reports: vec![block, ReportBlock::default()] },
        RtcpPacket::SourceDescription(vec![(1, "alice@example.com".into()), (2, "".into())]),
        RtcpPacket::Goodbye { ssrcs: vec![1, 2], reason: Some("done".into()) },
        RtcpPacket::Goodbye { ssrcs: vec![1], reason: None },
        RtcpPacket::Other { packet_type: 204, count: 3, body: vec![1, 2, 3, 4].into() },
    ];
    let bytes = RtcpPacket::compound_to_bytes(&packets);
    assert_eq!(bytes.len() % 4, 0);
    assert!(is_rtcp(&bytes));
    assert!(!is_rtcp(&RtpPacket::new(0, 1, 2, 3, vec![0; 160]).to_bytes()));
    assert_eq!(RtcpPacket::parse_compound(&bytes).unwrap(), packets);
    assert!(RtcpPacket::parse_compound(&bytes[..bytes.len() - 4]).is_err());
}

fn rtp_packet() -> impl Strategy<Value = RtpPacket> {
    (
        (any::<bool>(), 0u8..128, any::<u16>(), any::<u32>(), any::<u32>()),
        proptest::collection::vec(any::<u32>(), 0..16),
        proptest::option::of((any::<u16>(), proptest::collection::vec(any::<[u8; 4]>(), 0..4))),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<u8>(),
    )
        .prop_map(|((marker, payload_type, sequence, timestamp, ssrc), csrc, ext, payload, padding)| RtpPacket {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrc,
            extension: ext.map(|(profile, words)| RtpExtension { profile, data: words.concat().into() }),
            payload: payload.into(),
            padding,
        })
}

proptest! {
    #[test]
    fn rtp_round_trip(p in rtp_packet()) {
        prop_assert_eq!(RtpPacket::parse(&p.to_bytes()), Ok(p));
    }

    #[test]
    fn rtp_and_rtcp_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = RtpPacket::parse(&bytes);
        let _ = RtcpPacket::parse_compound(&bytes);
        let _ = TelephoneEvent::parse(&bytes);
        // Nor does a session fed garbage.
        let mut s = RtpSession::new(RtpConfig::pcmu(1));
        let now = Instant::now();
        s.handle_input(now, addr(1), Component::Rtp, &bytes);
        s.handle_input(now, addr(2), Component::Rtcp, &bytes);
        s.handle_timeout(now + Duration::from_secs(10));
        while s.poll_event().is_some() {}
    }

    #[test]
    fn g711_never_panics(s in any::<i16>(), c in any::<u8>()) {
        let _ = (ulaw_encode(s), alaw_encode(s), ulaw_decode(c), alaw_decode(c));
    }
}

/// A session sending to `addr(5000)`, with the clock at `t0`.
fn sender(t0: Instant) -> RtpSession {
    let mut s = RtpSession::new(RtpConfig::pcmu(0xaaaa));
    s.set_remote(Some(addr(5000)), None);
    s.handle_timeout(t0);
    s
}

fn rtp_out(s: &mut RtpSession) -> Vec<RtpPacket> {
    let mut out = Vec::new();
    while let Some(t) = s.poll_transmit() {
        if t.component == Component::Rtp && !is_rtcp(&t.data) {
            out.push(RtpPacket::parse(&t.data).unwrap());
        }
    }
    out
}

#[test]
fn packetizes_20ms_frames_with_sequence_timestamp_and_ssrc() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    let ts0 = s.next_timestamp();
    for i in 0..3 {
        s.send_audio(t0 + FRAME * i, &[0; 160]);
    }
    let p = rtp_out(&mut s);
    assert_eq!(p.len(), 3);
    assert!(p[0].marker && !p[1].marker, "marker on the first packet (RFC 3551 §4.1)");
    assert_eq!(p[1].sequence, p[0].sequence.wrapping_add(1));
    assert_eq!(p[2].timestamp, ts0.wrapping_add(320));
    assert!(p.iter().all(|p| p.ssrc == 0xaaaa && p.payload_type == 0 && p.payload.len() == 160));
    assert_eq!(s.send_stats().packets, 3);
    assert_eq!(s.send_stats().octets, 480);
    // Not sending when the direction does not send; the clock still runs.
    s.set_direction(Direction::RecvOnly);
    s.send_audio(t0 + FRAME * 3, &[0; 160]);
    assert!(rtp_out(&mut s).is_empty());
    assert_eq!(s.next_timestamp(), ts0.wrapping_add(640));
}

#[test]
fn rfc4733_sending_start_updates_and_three_end_packets() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    s.send_dtmf("5", Some(Duration::from_millis(100))).unwrap();
    assert_eq!(s.send_dtmf("X", None), Err(RtpError::InvalidDigit('X')));
    for i in 0..10 {
        s.send_audio(t0 + FRAME * i, &[0; 160]);
    }
    let p = rtp_out(&mut s);
    let events: Vec<(&RtpPacket, TelephoneEvent)> =
        p.iter().filter(|p| p.payload_type == 101).map(|p| (p, TelephoneEvent::parse(&p.payload).unwrap())).collect();
    // 100 ms = 800 units: start (marker), 3 updates, the end, 2 end retransmissions.
    assert_eq!(events.len(), 7);
    assert!(events[0].0.marker);
    assert!(events[1..].iter().all(|(p, _)| !p.marker));
    let ts = events[0].0.timestamp;
    assert!(events.iter().all(|(p, e)| p.timestamp == ts && e.event == 5));
    let durations: Vec<u16> = events.iter().map(|(_, e)| e.duration).collect();
    assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
    let ends: Vec<bool> = events.iter().map(|(_, e)| e.end).collect();
    assert_eq!(ends, vec![false, false, false, false, true, true, true]);
    // Sequence numbers keep counting across events and audio.
    for w in p.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
    }
    // Audio resumes after, with the media clock having run on.
    let audio_after = p.iter().skip_while(|p| p.payload_type == 101 || p.timestamp < ts).find(|p| p.payload_type == 0);
    assert_eq!(audio_after.unwrap().timestamp, ts.wrapping_add(7 * 160));
    // Without telephone-event, DTMF is refused.
    let mut none = RtpSession::new(RtpConfig { telephone_event: None, ..RtpConfig::pcmu(1) });
    assert_eq!(none.send_dtmf("1", None), Err(RtpError::NoTelephoneEvent));
}

fn event_packet(seq: u16, ts: u32, event: u8, end: bool, duration: u16, marker: bool) -> Vec<u8> {
    let mut p =
        RtpPacket::new(101, seq, ts, 0xbbbb, TelephoneEvent { event, end, volume: 10, duration }.to_bytes().to_vec());
    p.marker = marker;
    p.to_bytes()
}

fn digits(s: &mut RtpSession) -> Vec<(char, u16)> {
    let mut out = Vec::new();
    while let Some(e) = s.poll_event() {
        if let RtpEvent::Dtmf { digit, duration } = e {
            out.push((digit, duration));
        }
    }
    out
}

#[test]
fn rfc4733_receiving_reports_each_digit_once() {
    let t0 = Instant::now();
    let mut r = RtpSession::new(RtpConfig::pcmu(0xcccc));
    let from = addr(6000);
    let feed = |r: &mut RtpSession, i: u32, data: Vec<u8>| r.handle_input(t0 + FRAME * i, from, Component::Rtp, &data);
    // '7': start, updates, 3 ends (one duplicated on the wire).
    feed(&mut r, 0, event_packet(1, 1000, 7, false, 160, true));
    feed(&mut r, 1, event_packet(2, 1000, 7, false, 320, false));
    feed(&mut r, 2, event_packet(3, 1000, 7, true, 480, false));
    feed(&mut r, 3, event_packet(4, 1000, 7, true, 480, false));
    feed(&mut r, 4, event_packet(4, 1000, 7, true, 480, false));
    feed(&mut r, 5, event_packet(5, 1000, 7, true, 480, false));
    assert_eq!(digits(&mut r), vec![('7', 480)]);
    // '#' whose end packets are all lost: reported when audio resumes.
    feed(&mut r, 6, event_packet(6, 2000, 11, false, 160, true));
    feed(&mut r, 7, event_packet(7, 2000, 11, false, 320, false));
    assert_eq!(digits(&mut r), vec![]);
    feed(&mut r, 8, RtpPacket::new(0, 8, 2480, 0xbbbb, vec![0xff; 160]).to_bytes());
    assert_eq!(digits(&mut r), vec![('#', 320)]);
    // 'A' then 'B' back to back, A's end lost: each once, in order.
    feed(&mut r, 9, event_packet(9, 3000, 12, false, 160, true));
    feed(&mut r, 10, event_packet(10, 3320, 13, false, 160, true));
    feed(&mut r, 11, event_packet(11, 3320, 13, true, 320, false));
    feed(&mut r, 12, event_packet(12, 3320, 13, true, 320, false));
    assert_eq!(digits(&mut r), vec![('A', 160), ('B', 320)]);
}

#[test]
fn symmetric_rtp_learns_the_remote_address_from_the_first_packet() {
    let t0 = Instant::now();
    let mut s = sender(t0);
    let nat = SocketAddr::from(([203, 0, 113, 9], 40000));
    s.handle_input(t0, nat, Component::Rtp, &RtpPacket::new(0, 1, 1, 0xbbbb, vec![0xff; 160]).to_bytes());
    s.handle_input(t0, addr(7000), Component::Rtp, &RtpPacket::new(0, 2, 161, 0xbbbb, vec![0xff; 160]).to_bytes());
    let learned: Vec<RtpEvent> =
        std::iter::from_fn(|| s.poll_event()).filter(|e| matches!(e, RtpEvent::RemoteAddress { .. })).collect();
    assert_eq!(learned, vec![RtpEvent::RemoteAddress { component: Component::Rtp, address: nat }]);
    assert_eq!(s.learned_address(), Some(nat));
    s.send_audio(t0, &[0; 160]);
    assert_eq!(s.poll_transmit().unwrap().destination, nat);
    // RTCP goes to the next port until RTCP arrives from somewhere.
    assert_eq!(s.remote_rtcp(), Some(SocketAddr::from(([203, 0, 113, 9], 40001))));
}

#[test]
fn rtp_timeout_fires_once_and_rearms() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(RtpConfig { rtp_timeout: Some(Duration::from_secs(3)), ..RtpConfig::pcmu(1) });
    s.handle_timeout(t0);
    assert!(s.poll_timeout().unwrap() <= t0 + Duration::from_secs(3));
    s.handle_timeout(t0 + Duration::from_millis(2999));
    assert!(!std::iter::from_fn(|| s.poll_event()).any(|e| e == RtpEvent::Timeout));
    s.handle_timeout(t0 + Duration::from_secs(3));
    s.handle_timeout(t0 + Duration::from_secs(4));
    assert_eq!(std::iter::from_fn(|| s.poll_event()).filter(|e| *e == RtpEvent::Timeout).count(), 1);
    let t5 = t0 + Duration::from_secs(5);
    s.handle_input(t5, addr(1), Component::Rtp, &RtpPacket::new(0, 1, 1, 9, vec![0xff; 160]).to_bytes());
    s.handle_timeout(t5 + Duration::from_secs(3));
    assert_eq!(std::iter::from_fn(|| s.poll_event()).filter(|e| *e == RtpEvent::Timeout).count(), 1);
}

#[test]
fn rtp_timeout_waits_while_the_direction_does_not_receive() {
    // Held (sendonly) or inactive: the peer owes us no RTP, so no timeout;
    // once receiving again, the silence counts from then.
    let t0 = Instant::now();
    let mut s = RtpSession::new(RtpConfig { rtp_timeout: Some(Duration::from_secs(3)), ..RtpConfig::pcmu(1) });
    s.set_direction(Direction::SendOnly);
    s.handle_timeout(t0);
    s.handle_timeout(t0 + Duration::from_secs(10));
    assert!(!std::iter::from_fn(|| s.poll_event()).any(|e| e == RtpEvent::Timeout));
    assert!(s.poll_timeout().is_none_or(|t| t > t0 + Duration::from_secs(10)));
    s.set_direction(Direction::SendRecv);
    let t11 = t0 + Duration::from_secs(11);
    s.send_audio(t11, &[0; 160]);
    s.handle_timeout(t11 + Duration::from_millis(2999));
    assert!(!std::iter::from_fn(|| s.poll_event()).any(|e| e == RtpEvent::Timeout));
    s.handle_timeout(t11 + Duration::from_secs(3));
    assert_eq!(std::iter::from_fn(|| s.poll_event()).filter(|e| *e == RtpEvent::Timeout).count(), 1);
}

#[test]
fn rtcp_interval_follows_rfc3550() {
    // §6.2/§6.3: 5 s minimum, the first report after half of it, each
    // interval randomised in [0.5, 1.5] and divided by e - 3/2.
    let t0 = Instant::now();
    let mut s = sender(t0);
    let mut times = Vec::new();
    let mut now = t0;
    let end = t0 + Duration::from_secs(120);
    while now < end {
        s.send_audio(now, &[0; 160]);
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while let Some(t) = s.poll_transmit() {
            if t.component == Component::Rtcp {
                assert_eq!(t.destination, addr(5001));
                times.push(now);
            }
        }
        now += FRAME;
    }
    let first = times[0] - t0;
    assert!(
        first >= Duration::from_secs_f64(2.5 * 0.5 / 1.2183)
            && first <= Duration::from_secs_f64(2.5 * 1.5 / 1.2183) + FRAME
    );
    for w in times.windows(2) {
        let d = (w[1] - w[0]).as_secs_f64();
        assert!((5.0 * 0.5 / 1.2183 - 0.001..=5.0 * 1.5 / 1.2183 + 0.021).contains(&d), "interval {d}");
    }
    // About 120 / (5 / 1.2183) reports.
    assert!((20..=36).contains(&times.len()), "{} reports", times.len());
}

fn rtcp_out(s: &mut RtpSession) -> Vec<RtcpPacket> {
    let mut out = Vec::new();
    while let Some(t) = s.poll_transmit() {
        if t.component == Component::Rtcp || is_rtcp(&t.data) {
            out.extend(RtcpPacket::parse_compound(&t.data).unwrap());
        }
    }
    out
}

#[test]
fn reports_are_sr_when_sending_rr_when_only_receiving_with_loss_and_jitter() {
    let t0 = Instant::now();
    let mut r = RtpSession::new(RtpConfig::pcmu(0xcccc));
    r.set_remote(Some(addr(5000)), None);
    // 100 packets sent, every 10th lost, arriving on time (no jitter).
    for i in 0..100u16 {
        if i % 10 == 3 {
            continue;
        }
        let p = RtpPacket::new(0, 65500u16.wrapping_add(i), 160 * u32::from(i), 0xbbbb, vec![0xff; 160]);
        r.handle_input(t0 + FRAME * u32::from(i), addr(5000), Component::Rtp, &p.to_bytes());
    }
    let stats = r.receive_stats();
    assert_eq!(stats.received, 90);
    assert_eq!(stats.lost(), 10);
    assert_eq!(stats.extended_max(), 65536 + 63, "sequence wrap counted as a cycle");
    assert_eq!(stats.jitter(), 0);
    r.handle_timeout(t0 + Duration::from_secs(10));
    let pkts = rtcp_out(&mut r);
    let RtcpPacket::ReceiverReport { ssrc, reports } = &pkts[0] else { panic!("RR expected: {pkts:?}") };
    assert_eq!(*ssrc, 0xcccc);
    assert_eq!(reports[0].ssrc, 0xbbbb);
    assert_eq!(reports[0].cumulative_lost, 10);
    assert_eq!(reports[0].fraction_lost, (10 * 256 / 100) as u8);
    assert!(matches!(&pkts[1], RtcpPacket::SourceDescription(c) if c[0].1 == "sipact-0000cccc"));

    // Jitter grows when arrivals wobble.
    let mut j = RtpSession::new(RtpConfig::pcmu(1));
    for i in 0..50u32 {
        let wobble = Duration::from_millis(if i % 2 == 0 { 0 } else { 15 });
        let p = RtpPacket::new(0, i as u16, 160 * i, 2, vec![0xff; 160]);
        j.handle_input(t0 + FRAME * i + wobble, addr(5000), Component::Rtp, &p.to_bytes());
    }
    assert!(j.receive_stats().jitter() > 50, "jitter {}", j.receive_stats().jitter());

    // A sender reports with an SR.
    let mut s = sender(t0);
    s.send_audio(t0, &[0; 160]);
    s.handle_timeout(t0 + Duration::from_secs(10));
    let pkts = rtcp_out(&mut s);
    let RtcpPacket::SenderReport { packet_count, octet_count, reports, .. } = &pkts[0] else { panic!("SR expected") };
    assert_eq!((*packet_count, *octet_count), (1, 160));
    assert!(reports.is_empty(), "nothing received, no report block");
}

#[test]
fn close_sends_bye_and_the_peer_hears_it() {
    let t0 = Instant::now();
    let mut a = sender(t0);
    let mut b = RtpSession::new(RtpConfig::pcmu(0xbbbb));
    a.close(t0, Some("bye"));
    assert!(a.is_closed());
    while let Some(t) = a.poll_transmit() {
        b.handle_input(t0, addr(4001), t.component, &t.data);
    }
    let byes: Vec<RtpEvent> =
        std::iter::from_fn(|| b.poll_event()).filter(|e| matches!(e, RtpEvent::Bye { .. })).collect();
    assert_eq!(byes, vec![RtpEvent::Bye { ssrcs: vec![0xaaaa] }]);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn extreme_settings_do_not_panic() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(RtpConfig {
        rtcp_interval: Duration::MAX,
        rtp_timeout: Some(Duration::MAX),
        wallclock: Duration::MAX,
        dtmf_gap: Duration::MAX,
        ..RtpConfig::pcmu(1)
    });
    s.set_remote(Some(SocketAddr::from(([192, 0, 2, 1], 65535))), None);
    s.handle_timeout(t0);
    let _ = s.poll_timeout();
    s.send_dtmf("11", Some(Duration::MAX)).unwrap();
    for i in 0..20 {
        s.send_audio(t0 + FRAME * i, &[]);
    }
    s.close(t0 + Duration::from_secs(1), None);
    while s.poll_transmit().is_some() {}
    assert_eq!(s.remote_rtcp(), None, "no port after 65535");
}
