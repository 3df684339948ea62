//! Two RtpSessions exchanging packets in memory with synthetic time: a
//! 440 Hz tone crosses PCMU and is found by Goertzel, DTMF crosses RFC 4733,
//! RTCP reports flow both ways. Then the same through the handlers' SDP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sipact_media::audio::*;
use sipact_media::handler::{DtmfOptions, HandlerHooks, RtpHandler, SessionDescriptionHandler};
use sipact_media::offer_answer::LocalMedia;
use sipact_media::rtp::*;
use sipact_proto::session::DescriptionHooks;

const FRAME: Duration = Duration::from_millis(20);
const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4000);
const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5000);

#[derive(Default)]
struct Heard {
    samples: Vec<i16>,
    digits: Vec<char>,
    sender_reports: usize,
    receiver_blocks: usize,
}

/// Moves every datagram from `from` (at `src`) into `to`, collecting what `to` reports.
fn deliver(now: Instant, from: &mut RtpSession, src: SocketAddr, to: &mut RtpSession, heard: &mut Heard) {
    while let Some(t) = from.poll_transmit() {
        let src = if t.component == Component::Rtcp { SocketAddr::new(src.ip(), src.port() + 1) } else { src };
        to.handle_input(now, src, t.component, &t.data);
    }
    while let Some(e) = to.poll_event() {
        match e {
            RtpEvent::Audio { samples, .. } => heard.samples.extend(samples),
            RtpEvent::Dtmf { digit, .. } => heard.digits.push(digit),
            RtpEvent::Rtcp(RtcpPacket::SenderReport { reports, .. }) => {
                heard.sender_reports += 1;
                heard.receiver_blocks += reports.len();
            }
            RtpEvent::Rtcp(RtcpPacket::ReceiverReport { reports, .. }) => heard.receiver_blocks += reports.len(),
            _ => {}
        }
    }
}

/// Runs `frames` 20 ms ticks: A plays `source`, B plays silence.
fn run(
    t0: Instant,
    frames: u32,
    a: &mut RtpSession,
    b: &mut RtpSession,
    source: &mut dyn AudioSource,
    at_a: &mut Heard,
    at_b: &mut Heard,
) {
    let mut frame = [0i16; 160];
    let mut silence = Silence::new(RATE_8K);
    for i in 0..frames {
        let now = t0 + FRAME * i;
        source.read(&mut frame);
        a.send_audio(now, &frame);
        let mut quiet = [0i16; 160];
        silence.read(&mut quiet);
        b.send_audio(now, &quiet);
        for s in [&mut *a, &mut *b] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        deliver(now, a, A, b, at_b);
        deliver(now, b, B, a, at_a);
    }
}

#[test]
fn tone_and_dtmf_cross_two_rtp_sessions() {
    let t0 = Instant::now();
    let mut a = RtpSession::new(RtpConfig { wallclock: Duration::from_secs(1_700_000_000), ..RtpConfig::pcmu(0xa) });
    let mut b = RtpSession::new(RtpConfig::pcmu(0xb));
    a.set_remote(Some(B), None);
    b.set_remote(Some(A), None);
    let (mut at_a, mut at_b) = (Heard::default(), Heard::default());

    // One second of 440 Hz.
    let mut tone = Tone::new(RATE_8K, 440.0, 8000);
    run(t0, 50, &mut a, &mut b, &mut tone, &mut at_a, &mut at_b);
    assert_eq!(at_b.samples.len(), 50 * 160);
    let detect = ToneDetector::new(RATE_8K, 440.0);
    for window in at_b.samples.chunks(800) {
        assert!(detect.detect(window), "440 Hz heard in every 100 ms");
    }
    assert!(!ToneDetector::new(RATE_8K, 1000.0).detect(&at_b.samples[..800]));
    assert!(goertzel_power(&at_b.samples, RATE_8K, 440.0) > 0.9);
    // A heard B's silence.
    assert!(!detect.detect(&at_a.samples));

    // DTMF while the tone keeps going.
    a.send_dtmf("159#*D", Some(Duration::from_millis(80))).unwrap();
    let t1 = t0 + FRAME * 50;
    run(t1, 100, &mut a, &mut b, &mut tone, &mut at_a, &mut at_b);
    assert_eq!(at_b.digits, vec!['1', '5', '9', '#', '*', 'D']);
    assert!(at_a.digits.is_empty());

    // Keep talking for 20 s: reports flow both ways, nothing lost, RTT known.
    let t2 = t1 + FRAME * 100;
    run(t2, 1000, &mut a, &mut b, &mut tone, &mut at_a, &mut at_b);
    assert!(at_b.sender_reports >= 3, "B heard {} SRs", at_b.sender_reports);
    assert!(at_a.receiver_blocks >= 3);
    assert_eq!(b.receive_stats().lost(), 0);
    assert_eq!(b.receive_stats().received, 1150);
    assert!(a.rtt().unwrap() < Duration::from_millis(1), "no delay in memory: {:?}", a.rtt());
    assert_eq!(b.learned_address(), Some(A));
}

#[test]
fn sdp_negotiated_handlers_carry_pcma_tone_and_dtmf() {
    // Alice offers PCMA first: the answer keeps her order, so both send PCMA.
    let pcma_first = LocalMedia {
        codecs: vec![
            sipact_media::offer_answer::Codec::pcma(),
            sipact_media::offer_answer::Codec::pcmu(),
            sipact_media::offer_answer::Codec::telephone_event(),
        ],
        ..LocalMedia::audio(A.ip(), A.port())
    };
    let mut alice = HandlerHooks::new(RtpHandler::new(pcma_first, 1, RtpConfig::pcmu(0xa)));
    let mut bob = HandlerHooks::new(RtpHandler::new(LocalMedia::audio(B.ip(), B.port()), 2, RtpConfig::pcmu(0xb)));
    let offer = alice.offer(false).unwrap();
    let answer = bob.answer(&offer, false).unwrap();
    alice.apply_answer(&answer).unwrap();
    alice.handler_mut().send_dtmf("42", &DtmfOptions::default()).unwrap();

    let t0 = Instant::now();
    let (mut at_a, mut at_b) = (Heard::default(), Heard::default());
    let mut tone = Tone::new(RATE_8K, 440.0, 8000);
    let mut recorder = WavRecorder::new(RATE_8K);
    {
        let a = alice.handler_mut().rtp_session_mut();
        assert_eq!(a.config().law, G711::Pcma);
        assert_eq!(a.config().payload_type, 8);
    }
    // The handlers own the sessions; a media driver would do this with sockets.
    let mut frame = [0i16; 160];
    for i in 0..60u32 {
        let now = t0 + FRAME * i;
        tone.read(&mut frame);
        alice.handler_mut().rtp_session_mut().send_audio(now, &frame);
        bob.handler_mut().rtp_session_mut().send_audio(now, &[0; 160]);
        let (a, b) = (alice.handler_mut().rtp_session_mut(), bob.handler_mut().rtp_session_mut());
        deliver(now, a, A, b, &mut at_b);
        deliver(now, b, B, a, &mut at_a);
    }
    assert_eq!(at_b.digits, vec!['4', '2']);
    recorder.write(&at_b.samples);
    // The recording survives a WAV round trip and still holds the tone
    // (after the DTMF, audio resumed).
    let (rate, samples) = read_wav(&recorder.to_wav()).unwrap();
    assert_eq!(rate, RATE_8K);
    assert_eq!(samples, at_b.samples);
    let tail = &samples[samples.len() - 1600..];
    assert!(ToneDetector::new(RATE_8K, 440.0).detect(tail));
}
