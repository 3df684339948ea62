//! The embedded demo (`sipact demo`): three user agents on 127.0.0.1 in
//! one process. Alice calls Bob; Bob sends reliable early media (183 with
//! 100rel), then answers; audio flows both ways over WebRTC (str0m: ICE,
//! DTLS-SRTP); Alice sends DTMF `1234#`;
//! Alice holds and unholds; Bob transfers Alice to Carol (blind REFER,
//! followed); everyone hangs up. It prints a ladder of the SIP flow and each
//! session's event timeline, and reports whether every step happened.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sipact_actors::core::WireRecord;
use sipact_actors::media::audio::{AudioSink, AudioSource, RATE_8K, Tone, ToneDetector};
use sipact_actors::{
    AudioFactory, DtmfOptions, InviteOptions, ProgressOptions, Session, SessionEvent, SessionEvents, UaConfig,
    UserAgent,
};
use sipact_message::SipMessage;
use tokio::sync::mpsc::UnboundedReceiver;

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(10);

/// One step of the demo and whether it happened.
#[derive(Debug, Clone)]
pub struct Step {
    /// What was expected.
    pub what: String,
    /// Whether it happened.
    pub ok: bool,
    /// Details (counts, the event that came instead...).
    pub detail: String,
}

/// The outcome of the demo.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The ladder diagram of every SIP message.
    pub ladder: String,
    /// Each session's event timeline.
    pub timelines: String,
}

impl Report {
    /// Whether every step happened.
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    fn step(&mut self, what: &str, ok: bool, detail: impl Into<String>) -> bool {
        self.steps.push(Step { what: what.to_owned(), ok, detail: detail.into() });
        ok
    }

    /// The report as text: steps, ladder, timelines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== SIP ladder\n{}", self.ladder);
        let _ = writeln!(out, "== Session timelines\n{}", self.timelines);
        let _ = writeln!(out, "== Steps");
        for s in &self.steps {
            let _ = writeln!(
                out,
                "[{}] {}{}",
                if s.ok { " ok " } else { "FAIL" },
                s.what,
                if s.detail.is_empty() { String::new() } else { format!(" — {}", s.detail) }
            );
        }
        let _ = writeln!(
            out,
            "{}",
            if self.passed() { "demo: every step happened" } else { "demo: some steps did not happen" }
        );
        out
    }
}

/// Counts received frames carrying a tone.
struct Heard {
    detector: ToneDetector,
    count: Arc<AtomicUsize>,
}

impl AudioSink for Heard {
    fn sample_rate(&self) -> u32 {
        RATE_8K
    }
    fn write(&mut self, frame: &[i16]) {
        if self.detector.detect(frame) {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Plays `play` Hz; counts frames in which `hear` Hz arrives.
fn audio(play: f64, hear: f64) -> (AudioFactory, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let f: AudioFactory = Arc::new(move |_| {
        let source = Box::new(Tone::new(RATE_8K, play, 6000)) as Box<dyn AudioSource>;
        let sink = Heard { detector: ToneDetector::new(RATE_8K, hear), count: c.clone() };
        (source, Box::new(sink) as Box<dyn AudioSink>)
    });
    (f, count)
}

fn config(user: &str) -> UaConfig {
    UaConfig {
        user: user.into(),
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        media: "webrtc".into(),
        rel100: "supported".into(),
        ..UaConfig::default()
    }
}

/// A session's events as they arrive, with the time they arrived (a task
/// drains the stream continuously so the times are right).
struct Watch {
    who: String,
    seen: Arc<std::sync::Mutex<Vec<(Instant, SessionEvent)>>>,
}

impl Watch {
    fn new(who: &str, s: &Session) -> Watch {
        let seen: Arc<std::sync::Mutex<Vec<(Instant, SessionEvent)>>> = Arc::default();
        let sink = seen.clone();
        let mut events: SessionEvents = s.events();
        actix::spawn(async move {
            while let Some(e) = events.next().await {
                if let Ok(mut v) = sink.lock() {
                    v.push((Instant::now(), e));
                }
            }
        });
        Watch { who: who.to_owned(), seen }
    }

    fn snapshot(&self) -> Vec<(Instant, SessionEvent)> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits (bounded) for an event matching `pred`; true if it came.
    async fn until(&self, pred: impl Fn(&SessionEvent) -> bool) -> bool {
        let deadline = Instant::now() + STEP;
        loop {
            if self.snapshot().iter().any(|(_, e)| pred(e)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn count(&self, pred: impl Fn(&SessionEvent) -> bool) -> usize {
        self.snapshot().iter().filter(|(_, e)| pred(e)).count()
    }
}

fn event_label(e: &SessionEvent) -> String {
    match e {
        SessionEvent::Progress { response } => format!("progress {}", response.status),
        SessionEvent::Accepted { .. } => "accepted".into(),
        SessionEvent::Rejected { response, cause } => format!("rejected {} ({cause})", response.status),
        SessionEvent::Failed { cause, .. } => format!("failed ({cause})"),
        SessionEvent::Terminated { cause } => format!("terminated ({cause})"),
        SessionEvent::Cancel => "cancel".into(),
        SessionEvent::Bye { .. } => "bye".into(),
        SessionEvent::Dtmf { tone, outgoing, .. } => {
            format!("dtmf {tone} {}", if *outgoing { "sent" } else { "received" })
        }
        SessionEvent::Refer { .. } => "refer".into(),
        SessionEvent::ReferProgress { status, .. } => format!("refer progress {status}"),
        SessionEvent::HoldChanged { local_hold } => format!("hold {}", if *local_hold { "on" } else { "off" }),
        SessionEvent::Reinvited { .. } => "re-INVITE received".into(),
        SessionEvent::Replaced { .. } => "replaced".into(),
        other => format!("{other:?}").split([' ', '{', '(']).next().unwrap_or("event").to_owned(),
    }
}

/// Renders the ladder: one line per message, an arrow from sender to receiver.
fn ladder(records: &[(String, WireRecord)], names: &[(std::net::SocketAddr, String)]) -> String {
    let cols: Vec<&str> = names.iter().map(|(_, n)| n.as_str()).collect();
    let width = 22;
    let mut out = String::new();
    let header: String = cols.iter().map(|c| format!("{c:<width$}")).collect();
    let _ = writeln!(out, "          {header}");
    let start = records.first().map(|(_, r)| r.at).unwrap_or(SystemTime::UNIX_EPOCH);
    let who =
        |addr: std::net::SocketAddr| names.iter().position(|(a, _)| a.ip() == addr.ip() && a.port() == addr.port());
    for (from, r) in records {
        let Some(src) = cols.iter().position(|c| c == from) else { continue };
        let dst = who(r.peer.addr).unwrap_or(src);
        let label = match SipMessage::parse(r.data.clone()) {
            Ok(SipMessage::Request(q)) => q.method.to_string(),
            Ok(SipMessage::Response(p)) => {
                format!("{} {}", p.status, p.headers.cseq().map(|c| c.method.to_string()).unwrap_or_default())
            }
            Err(_) => "?".into(),
        };
        let t = r.at.duration_since(start).unwrap_or_default();
        let (lo, hi) = (src.min(dst), src.max(dst));
        let mut line = vec![b' '; width * cols.len()];
        for i in 0..cols.len() {
            line[i * width] = b'|';
        }
        if lo != hi {
            for b in line.iter_mut().take(hi * width).skip(lo * width + 1) {
                *b = b'-';
            }
            if dst > src {
                line[hi * width - 1] = b'>';
            } else {
                line[lo * width + 1] = b'<';
            }
            let mid = lo * width + 3;
            for (i, ch) in label.bytes().enumerate() {
                if mid + i < hi * width - 2 {
                    line[mid + i] = ch;
                }
            }
        }
        let _ = writeln!(out, "{:>7.3}s  {}", t.as_secs_f64(), String::from_utf8_lossy(&line).trim_end());
    }
    out
}

fn drain(tap: &mut UnboundedReceiver<WireRecord>, who: &str, into: &mut Vec<(String, WireRecord)>) {
    while let Ok(r) = tap.try_recv() {
        if r.outgoing {
            into.push((who.to_owned(), r));
        }
    }
}

/// Runs the demo inside the current actix system.
pub async fn run() -> Report {
    let mut report = Report::default();
    let (alice_audio, alice_heard) = audio(440.0, 880.0);
    let (bob_audio, bob_heard) = audio(880.0, 440.0);
    let (carol_audio, carol_heard) = audio(660.0, 440.0);
    let start = |user: &str, a: AudioFactory| UserAgent::start_with_media(config(user), a);
    let (alice, bob, carol) = match (start("alice", alice_audio), start("bob", bob_audio), start("carol", carol_audio))
    {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (a, b, c) => {
            let err = [a.err(), b.err(), c.err()].into_iter().flatten().map(|e| e.to_string()).collect::<Vec<_>>();
            report.step("start three user agents on 127.0.0.1", false, err.join("; "));
            return report;
        }
    };
    report.step(
        "start three user agents on 127.0.0.1",
        true,
        format!("alice {}, bob {}, carol {}", alice.local_addr(), bob.local_addr(), carol.local_addr()),
    );
    let names = vec![
        (alice.local_addr(), "alice".to_owned()),
        (bob.local_addr(), "bob".to_owned()),
        (carol.local_addr(), "carol".to_owned()),
    ];
    let mut taps = [("alice", alice.wire()), ("bob", bob.wire()), ("carol", carol.wire())];
    let mut bob_in = bob.incoming();
    let mut carol_in = carol.incoming();
    let mut watches: Vec<Watch> = Vec::new();

    let result = script(
        &mut report,
        [&alice, &bob, &carol],
        &mut bob_in,
        &mut carol_in,
        &mut watches,
        [&alice_heard, &bob_heard, &carol_heard],
    )
    .await;
    if let Err(what) = result {
        report.step(&what, false, "stopped here");
    }
    // Everyone hangs up (whatever is left) and the agents stop.
    for ua in [&alice, &bob, &carol] {
        let _ = tokio::time::timeout(Duration::from_secs(40), ua.shutdown()).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut records = Vec::new();
    for (who, tap) in taps.iter_mut() {
        drain(tap, who, &mut records);
    }
    records.sort_by_key(|(_, r)| r.at);
    report.ladder = ladder(&records, &names);
    let t0 = watches.iter().flat_map(|w| w.snapshot().first().map(|(t, _)| *t)).min();
    for w in &watches {
        let _ = writeln!(report.timelines, "{}:", w.who);
        for (t, e) in &w.snapshot() {
            let dt = t0.map(|t0| t.saturating_duration_since(t0)).unwrap_or_default();
            let _ = writeln!(report.timelines, "  {:>7.3}s  {}", dt.as_secs_f64(), event_label(e));
        }
    }
    report
}

async fn script(
    report: &mut Report,
    [alice, bob, carol]: [&UserAgent; 3],
    bob_in: &mut sipact_actors::Incoming,
    carol_in: &mut sipact_actors::Incoming,
    watches: &mut Vec<Watch>,
    heard: [&Arc<AtomicUsize>; 3],
) -> Result<(), String> {
    // 1. Alice calls Bob.
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.map_err(|e| format!("alice invites bob: {e}"))?;
    watches.push(Watch::new("alice (to bob)", &a));
    let b = tokio::time::timeout(STEP, bob_in.next()).await.ok().flatten().ok_or("bob receives the INVITE")?;
    watches.push(Watch::new("bob (from alice)", &b));
    report.step("alice calls bob; bob receives the INVITE", true, "");

    // 2. Reliable early media, then the answer.
    b.progress(ProgressOptions { status: 183, early_media: true, reliable: true })
        .await
        .map_err(|e| format!("bob sends a reliable 183: {e}"))?;
    let early = watches[0].until(|e| matches!(e, SessionEvent::Progress { response } if response.status == 183)).await;
    let reliable = watches[0].snapshot().iter().any(|(_, e)| {
        matches!(e, SessionEvent::Progress { response } if response.headers.rseq().is_some() && response.headers.requires("100rel"))
    });
    report.step("bob sends reliable early media (183 with 100rel and RSeq)", early && reliable, "");
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.accept().await.map_err(|e| format!("bob answers: {e}"))?;
    let acc_a = watches[0].until(|e| matches!(e, SessionEvent::Accepted { .. })).await;
    let acc_b = watches[1].until(|e| matches!(e, SessionEvent::Accepted { .. })).await;
    report.step("bob answers; both sides accepted", acc_a && acc_b, "");

    // 3. Audio both ways.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (sa, sb) = (a.media_stats().unwrap_or_default(), b.media_stats().unwrap_or_default());
    let (ha, hb) = (heard[0].load(Ordering::Relaxed), heard[1].load(Ordering::Relaxed));
    let profile = a
        .description_handler()
        .local_description()
        .map(|d| String::from_utf8_lossy(&d.data).contains("UDP/TLS/RTP/SAVPF"))
        .unwrap_or(false);
    report.step(
        "audio flows both ways over WebRTC (ICE, DTLS-SRTP; tones detected after decoding)",
        profile && sa.packets_sent > 0 && sa.packets_received > 0 && sb.packets_received > 0 && ha > 0 && hb > 0,
        format!(
            "alice sent {} / received {} SRTP packets, bob sent {} / received {}; alice heard bob's 880 Hz in {ha} frames, bob heard 440 Hz in {hb}",
            sa.packets_sent, sa.packets_received, sb.packets_sent, sb.packets_received
        ),
    );

    // 4. DTMF 1234#.
    a.dtmf("1234#", DtmfOptions { inter_tone_gap: 200, ..DtmfOptions::default() })
        .await
        .map_err(|e| format!("alice sends DTMF: {e}"))?;
    let got = watches[1].until(|e| matches!(e, SessionEvent::Dtmf { tone: '#', outgoing: false, .. })).await;
    let tones: String = watches[1]
        .snapshot()
        .iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Dtmf { tone, outgoing: false, .. } => Some(*tone),
            _ => None,
        })
        .collect();
    report.step(
        "alice sends DTMF 1234#; bob's events show each tone",
        got && tones == "1234#",
        format!("bob saw {tones:?}"),
    );

    // 5. Hold and unhold.
    a.hold().await.map_err(|e| format!("alice holds: {e}"))?;
    let held = watches[0].until(|e| matches!(e, SessionEvent::HoldChanged { local_hold: true })).await;
    a.unhold().await.map_err(|e| format!("alice unholds: {e}"))?;
    let unheld = watches[0].until(|e| matches!(e, SessionEvent::HoldChanged { local_hold: false })).await;
    report.step("alice holds and unholds (re-INVITE, sendonly then sendrecv)", held && unheld, "");

    // 6. Bob transfers Alice to Carol (blind REFER); Alice follows it.
    b.refer(&carol.uri()).await.map_err(|e| format!("bob sends REFER: {e}"))?;
    let got_refer = watches[0].until(|e| matches!(e, SessionEvent::Refer { .. })).await;
    let refer = watches[0].snapshot().into_iter().find_map(|(_, e)| match e {
        SessionEvent::Refer { request } => Some(request),
        _ => None,
    });
    let Some(refer) = refer.filter(|_| got_refer) else {
        report.step("bob transfers alice to carol (REFER)", false, "alice got no REFER");
        return Ok(());
    };
    let a2 = a.follow_refer(&refer).await.map_err(|e| format!("alice follows the REFER: {e}"))?;
    watches.push(Watch::new("alice (to carol)", &a2));
    let c = tokio::time::timeout(STEP, carol_in.next()).await.ok().flatten().ok_or("carol receives the INVITE")?;
    watches.push(Watch::new("carol (from alice)", &c));
    let referred =
        c.request().is_some_and(|r| r.headers.iter().any(|h| matches!(h, sipact_message::Header::ReferredBy(_))));
    c.accept().await.map_err(|e| format!("carol answers: {e}"))?;
    let up = watches[2].until(|e| matches!(e, SessionEvent::Accepted { .. })).await;
    let notified = watches[1].until(|e| matches!(e, SessionEvent::ReferProgress { status: 200, .. })).await;
    report.step(
        "bob transfers alice to carol (blind REFER, followed; NOTIFY 200 to bob)",
        up && notified && referred,
        if referred { "" } else { "no Referred-By on carol's INVITE" },
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let hc = heard[2].load(Ordering::Relaxed);
    report.step("audio flows between alice and carol", hc > 0, format!("carol heard alice's 440 Hz in {hc} frames"));

    // 7. Everyone hangs up: bob ends the transferred call, alice and carol theirs.
    b.bye().await.map_err(|e| format!("bob hangs up: {e}"))?;
    a2.bye().await.map_err(|e| format!("alice hangs up on carol: {e}"))?;
    let mut ended = true;
    for w in watches.iter() {
        ended &= w.until(|e| matches!(e, SessionEvent::Terminated { .. })).await;
    }
    let once = watches.iter().all(|w| w.count(|e| matches!(e, SessionEvent::Terminated { .. })) == 1);
    report.step("everyone hangs up; every session ends exactly once", ended && once, "");
    Ok(())
}
