//! Media between two user agents on 127.0.0.1, in real time, over plain
//! RTP and over WebRTC (str0m on both sides: ICE, DTLS-SRTP): tones both
//! ways, echo, RFC 4733 DTMF, hold and unhold, the RTP timeout. Each test
//! body takes the media kind; the `rtp` and `webrtc` modules run it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use sipact_actors::media::audio::{AudioSink, AudioSource, RATE_8K, Silence, Tone, ToneDetector};
use sipact_actors::{AudioFactory, Cause, DtmfOptions, MediaStats, Session, SessionEvent, UaConfig, UserAgent};
use sipact_message::Method;

/// Counts the 20 ms frames in which each of two tones is heard.
struct Detector {
    want: ToneDetector,
    other: ToneDetector,
    heard: Arc<AtomicUsize>,
    wrong: Arc<AtomicUsize>,
}

impl AudioSink for Detector {
    fn sample_rate(&self) -> u32 {
        RATE_8K
    }
    fn write(&mut self, frame: &[i16]) {
        if self.want.detect(frame) {
            self.heard.fetch_add(1, Ordering::Relaxed);
        }
        if self.other.detect(frame) {
            self.wrong.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Plays `play` Hz and listens for `hear` Hz; returns the counters of
/// frames with the expected tone and with the one we play.
fn tone_audio(play: f64, hear: f64) -> (AudioFactory, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let heard = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    let (h, w) = (heard.clone(), wrong.clone());
    let f: AudioFactory = Arc::new(move |_| {
        let source = Box::new(Tone::new(RATE_8K, play, 8000)) as Box<dyn AudioSource>;
        let sink = Detector {
            want: ToneDetector::new(RATE_8K, hear),
            other: ToneDetector::new(RATE_8K, play),
            heard: h.clone(),
            wrong: w.clone(),
        };
        (source, Box::new(sink) as Box<dyn AudioSink>)
    });
    (f, heard, wrong)
}

fn silent() -> AudioFactory {
    Arc::new(|_| {
        let sink = Detector {
            want: ToneDetector::new(RATE_8K, 1000.0),
            other: ToneDetector::new(RATE_8K, 1000.0),
            heard: Arc::default(),
            wrong: Arc::default(),
        };
        (Box::new(Silence::new(RATE_8K)) as Box<dyn AudioSource>, Box::new(sink) as Box<dyn AudioSink>)
    })
}

fn stats(s: &Session) -> MediaStats {
    s.media_stats().expect("the session has RTP media")
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Alice calls Bob; both answered and confirmed.
async fn call(alice: &UserAgent, bob: &UserAgent) -> Call {
    let mut inc = bob.incoming();
    establish(alice, bob, &mut inc).await
}

fn media_cfg(media: &str, user: &str, f: impl FnOnce(&mut UaConfig)) -> UaConfig {
    let mut c = cfg(user);
    c.media = media.into();
    f(&mut c);
    c
}

/// Runs each named test body for plain RTP and for WebRTC.
macro_rules! for_each_media {
    ($($name:ident),* $(,)?) => {
        mod rtp {
            $(#[actix_rt::test]
            async fn $name() {
                super::$name("rtp").await
            })*
        }
        mod webrtc {
            $(#[actix_rt::test]
            async fn $name() {
                super::$name("webrtc").await
            })*
        }
    };
}

for_each_media!(
    tones_flow_both_ways,
    echo_plays_back_what_it_hears,
    dtmf_goes_as_rfc4733_telephone_events,
    hold_stops_the_held_direction_and_unhold_resumes_it,
);

async fn tones_flow_both_ways(media: &str) {
    let (a_audio, a_heard, a_wrong) = tone_audio(440.0, 880.0);
    let (b_audio, b_heard, b_wrong) = tone_audio(880.0, 440.0);
    let alice = UserAgent::start_with_media(media_cfg(media, "alice", |_| ()), a_audio).unwrap();
    let bob = UserAgent::start_with_media(media_cfg(media, "bob", |_| ()), b_audio).unwrap();
    let mut c = call(&alice, &bob).await;
    // Half a second of tone each way.
    until("880 Hz at alice and 440 Hz at bob", || {
        a_heard.load(Ordering::Relaxed) >= 25 && b_heard.load(Ordering::Relaxed) >= 25
    })
    .await;
    assert_eq!(a_wrong.load(Ordering::Relaxed), 0, "alice hears only bob's tone");
    assert_eq!(b_wrong.load(Ordering::Relaxed), 0, "bob hears only alice's tone");
    let (sa, sb) = (stats(&c.a), stats(&c.b));
    for s in [sa, sb] {
        assert!(s.packets_sent >= 25 && s.packets_received >= 25, "{s:?}");
        // PCMU, 20 ms: 12 bytes of header and 160 of payload (plus the
        // SRTP authentication tag over WebRTC).
        assert!(s.bytes_sent >= s.packets_sent * 172 && s.bytes_received >= s.packets_received * 172, "{s:?}");
    }
    // What one sent, the other received (give or take the packets in flight).
    assert!(sb.packets_received <= sa.packets_sent + 5 && sa.packets_received <= sb.packets_sent + 5);
    let sdp = body_str(&c.a.description_handler().local_description().unwrap().data);
    if media == "webrtc" {
        assert!(sdp.contains("UDP/TLS/RTP/SAVPF 0 8 111 101") && sdp.contains("a=fingerprint:sha-256"), "{sdp}");
        assert!(sdp.contains("a=candidate:") && sdp.contains(" 127.0.0.1 "), "{sdp}");
        // SRTP adds a 10-byte authentication tag to every packet.
        assert!(sa.bytes_sent >= sa.packets_sent * 182, "{sa:?}");
    } else {
        assert!(sdp.contains("RTP/AVP 0 8 101") && !sdp.contains(" 4000 "), "{sdp}");
    }
    c.a.bye().await.unwrap();
    events_to_end(&mut c.a_ev, &mut c.a_seen).await;
    events_to_end(&mut c.b_ev, &mut c.b_seen).await;
    // The media stopped with the session.
    let after = stats(&c.a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats(&c.a).packets_sent, after.packets_sent);
}

async fn echo_plays_back_what_it_hears(media: &str) {
    let (a_audio, a_heard, _) = tone_audio(440.0, 440.0);
    let alice = UserAgent::start_with_media(media_cfg(media, "alice", |_| ()), a_audio).unwrap();
    let bob = UserAgent::start(media_cfg(media, "bob", |c| c.echo = true)).unwrap();
    let mut c = call(&alice, &bob).await;
    until("alice's tone back from bob", || a_heard.load(Ordering::Relaxed) >= 10).await;
    c.hang_up().await;
}

async fn dtmf_goes_as_rfc4733_telephone_events(media: &str) {
    let rfc4733 = |c: &mut UaConfig| c.dtmf = "rfc4733".into();
    let alice = UserAgent::start_with_media(media_cfg(media, "alice", rfc4733), silent()).unwrap();
    let bob = UserAgent::start_with_media(media_cfg(media, "bob", rfc4733), silent()).unwrap();
    let mut a_tap = Tap::new(&alice);
    let mut c = call(&alice, &bob).await;
    let opts = DtmfOptions { duration: 80, inter_tone_gap: 60, ..Default::default() };
    c.a.dtmf("123#", opts).await.unwrap();
    let mut tones = Vec::new();
    while tones.len() < 4 {
        let e = events_until(&mut c.b_ev, &mut c.b_seen, |e| matches!(e, SessionEvent::Dtmf { .. })).await;
        if let SessionEvent::Dtmf { request, tone, duration, outgoing } = e {
            assert!(request.is_none() && !outgoing);
            assert!((70..=100).contains(&duration), "duration {duration} ms");
            tones.push(tone);
        }
    }
    assert_eq!(tones.iter().collect::<String>(), "123#");
    // Alice reported what she sent; no INFO went out.
    let mut a_seen = c.a_seen.clone();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(50), c.a_ev.next()).await {
        a_seen.push(e);
    }
    let sent: String = a_seen
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Dtmf { tone, outgoing: true, request: None, .. } => Some(*tone),
            _ => None,
        })
        .collect();
    assert_eq!(sent, "123#");
    a_tap.drain();
    assert!(a_tap.requests(true, &Method::Info).is_empty(), "{:?}", a_tap.labels());
    assert!(stats(&c.a).packets_sent > 0);
    c.a.bye().await.unwrap();
    events_to_end(&mut c.b_ev, &mut c.b_seen).await;
}

async fn hold_stops_the_held_direction_and_unhold_resumes_it(media: &str) {
    // A short RTP timeout on both sides: hold must not trip it (a held
    // side expects no media).
    let timeout = |c: &mut UaConfig| c.rtp_timeout_ms = Some(400);
    let alice = UserAgent::start_with_media(media_cfg(media, "alice", timeout), silent()).unwrap();
    let bob = UserAgent::start_with_media(media_cfg(media, "bob", timeout), silent()).unwrap();
    let mut c = call(&alice, &bob).await;
    until("media both ways", || stats(&c.a).packets_received >= 5 && stats(&c.b).packets_received >= 5).await;

    // Alice holds Bob: she offers sendonly, Bob answers recvonly and stops sending.
    c.a.hold().await.unwrap();
    events_until(&mut c.a_ev, &mut c.a_seen, |e| matches!(e, SessionEvent::HoldChanged { local_hold: true })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (a0, b0) = (stats(&c.a), stats(&c.b));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (a1, b1) = (stats(&c.a), stats(&c.b));
    assert_eq!(a1.packets_received, a0.packets_received, "bob stopped sending: {a0:?} {a1:?}");
    assert_eq!(b1.packets_sent, b0.packets_sent);
    assert!(b1.packets_received >= b0.packets_received + 20, "alice still sends: {b0:?} {b1:?}");
    assert!(!c.a.is_terminated() && !c.b.is_terminated(), "hold does not trip the RTP timeout");

    c.a.unhold().await.unwrap();
    events_until(&mut c.a_ev, &mut c.a_seen, |e| matches!(e, SessionEvent::HoldChanged { local_hold: false })).await;
    until("bob sending again", || stats(&c.a).packets_received >= a1.packets_received + 20).await;
    assert!(!c.a.is_terminated() && !c.b.is_terminated());
    c.a.bye().await.unwrap();
    events_to_end(&mut c.a_ev, &mut c.a_seen).await;
    assert!(c.a_seen.iter().all(|e| !matches!(e, SessionEvent::Terminated { cause: Cause::RtpTimeout })));
}

#[actix_rt::test]
async fn rtp_timeout_ends_the_session_when_the_peer_sends_nothing() {
    let alice =
        UserAgent::start_with_media(media_cfg("rtp", "alice", |c| c.rtp_timeout_ms = Some(500)), silent()).unwrap();
    // Bob announces audio but has no media at all.
    let bob = UserAgent::start(media_cfg("none", "bob", |_| ())).unwrap();
    let mut c = call(&alice, &bob).await;
    assert!(c.b.media_stats().is_none());
    let started = Instant::now();
    events_to_end(&mut c.a_ev, &mut c.a_seen).await;
    assert!(
        matches!(c.a_seen.last(), Some(SessionEvent::Terminated { cause: Cause::RtpTimeout })),
        "{:?}",
        names(&c.a_seen)
    );
    assert!(started.elapsed() >= Duration::from_millis(400), "not before the timeout");
    // Bob got the BYE.
    events_to_end(&mut c.b_ev, &mut c.b_seen).await;
    assert_eq!(names(&c.b_seen), ["accepted", "bye", "terminated"]);
    assert!(stats(&c.a).packets_sent > 0 && stats(&c.a).packets_received == 0);
}

#[actix_rt::test]
async fn media_settings_are_checked() {
    assert!(UserAgent::start(media_cfg("smoke", "x", |_| ())).is_err());
    assert!(UserAgent::start(media_cfg("rtp", "x", |c| c.dtmf = "smoke".into())).is_err());
    let signalling = media_cfg("signalling", "x", |_| ());
    assert!(UserAgent::start_with_media(signalling, silent()).is_err());
    let webrtc = media_cfg("webrtc", "x", |_| ());
    UserAgent::start_with_media(webrtc, silent()).unwrap().shutdown().await;
}

#[actix_rt::test]
async fn auto_answers_each_offer_in_its_own_kind() {
    let bob = UserAgent::start(media_cfg("auto", "bob", |c| c.echo = true)).unwrap();
    for (media, profile) in [("rtp", "RTP/AVP 0 8 101"), ("webrtc", "UDP/TLS/RTP/SAVPF 0 8 111 101")] {
        let (audio, heard, _) = tone_audio(440.0, 440.0);
        let alice = UserAgent::start_with_media(media_cfg(media, "alice", |_| ()), audio).unwrap();
        let mut c = call(&alice, &bob).await;
        let answer = body_str(&c.b.description_handler().local_description().unwrap().data);
        assert!(answer.contains(profile), "{media}: {answer}");
        until("alice's tone echoed back", || heard.load(Ordering::Relaxed) >= 10).await;
        assert!(stats(&c.b).packets_received > 0, "{media}");
        c.hang_up().await;
        alice.shutdown().await;
    }
}

#[actix_rt::test]
async fn a_handler_factory_in_the_config_makes_every_sessions_handler() {
    use sipact_actors::HandlerFactory;
    use sipact_actors::media::handler::{HandlerContext, HandlerError, NoneHandler, SessionDescriptionHandler};
    let made = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = made.clone();
    let factory = move |c: &HandlerContext| -> Result<Box<dyn SessionDescriptionHandler>, HandlerError> {
        seen.lock().unwrap().push(c.inbound);
        Ok(Box::new(NoneHandler::new(c.address, 7777, c.session_id)))
    };
    let custom = |c: &mut UaConfig| c.handler_factory = Some(HandlerFactory(Arc::new(factory)));
    let alice = UserAgent::start(media_cfg("webrtc", "alice", custom)).unwrap();
    let bob = UserAgent::start(media_cfg("rtp", "bob", |_| ())).unwrap();
    let mut c = call(&alice, &bob).await;
    let offer = body_str(&c.a.description_handler().local_description().unwrap().data);
    assert!(offer.contains("m=audio 7777 RTP/AVP"), "the factory's handler, not WebRTC: {offer}");
    assert!(c.a.media_stats().is_none(), "a custom handler has no media actor");
    assert_eq!(*made.lock().unwrap(), [false]);
    c.hang_up().await;
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<sipact_actors::DataEvent>) -> sipact_actors::DataEvent {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("a data channel event in time").expect("open stream")
}

#[actix_rt::test]
async fn the_webrtc_data_channel_carries_messages_both_ways() {
    use sipact_actors::{DataError, DataEvent};
    let alice = UserAgent::start(media_cfg("webrtc", "alice", |c| c.data_channel = Some("chat".into()))).unwrap();
    let bob = UserAgent::start(media_cfg("webrtc", "bob", |_| ())).unwrap();
    let mut c = call(&alice, &bob).await;
    let (mut a_data, mut b_data) = (c.a.data_events(), c.b.data_events());
    assert_eq!(next(&mut b_data).await, DataEvent::Open { label: "chat".into() });
    assert!(matches!(next(&mut a_data).await, DataEvent::Open { .. }));
    c.a.send_data(b"hello bob".to_vec()).await.unwrap();
    assert_eq!(next(&mut b_data).await, DataEvent::Message(b"hello bob".to_vec()));
    c.b.send_data("hello alice").await.unwrap();
    assert_eq!(next(&mut a_data).await, DataEvent::Message(b"hello alice".to_vec()));
    // A late subscriber learns at once that the channel is open.
    let mut late = c.a.data_events();
    assert!(matches!(next(&mut late).await, DataEvent::Open { .. }));
    c.hang_up().await;
    // The streams end with the media.
    let end = tokio::time::timeout(WAIT, b_data.recv()).await.expect("the stream ends in time");
    assert_eq!(end, None);
    assert_eq!(c.a.send_data("late").await, Err(DataError::NoWebRtcMedia));
    // Plain RTP has no data channel.
    let carol = UserAgent::start(media_cfg("rtp", "carol", |_| ())).unwrap();
    let dave = UserAgent::start(media_cfg("rtp", "dave", |_| ())).unwrap();
    let mut c = call(&carol, &dave).await;
    assert_eq!(c.a.send_data("x").await, Err(DataError::NoWebRtcMedia));
    c.hang_up().await;
}
