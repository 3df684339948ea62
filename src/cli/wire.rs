//! The wire tap behind `--pcap` and `--ladder`: one task reads every SIP
//! message the user agent sends and receives, writes it to the pcap file,
//! and keeps each call's messages until the call is over, then prints its
//! ladder (after a short grace period for the last retransmissions).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sipact::actors::UserAgent;
use sipact::message::SipMessage;
use tokio::sync::{mpsc, oneshot};

use super::ladder::{self, Entry};
use super::pcap::PcapWriter;

/// How long after a call's end its ladder waits for late messages.
const GRACE: Duration = Duration::from_millis(400);

enum Ctl {
    Ended(String),
    Finish(oneshot::Sender<Option<String>>),
}

/// A running tap.
pub struct WireTap {
    tx: mpsc::UnboundedSender<Ctl>,
}

struct State {
    ua: UserAgent,
    pcap: Option<PcapWriter>,
    pcap_error: Option<String>,
    ladder: bool,
    calls: HashMap<String, Vec<Entry>>,
    order: Vec<String>,
    ending: Vec<(Instant, String)>,
    printed: HashSet<String>,
}

impl State {
    fn record(&mut self, rec: sipact::actors::core::WireRecord) {
        let local = self.ua.addr(rec.peer.transport).unwrap_or_else(|| self.ua.local_addr());
        if let Some(w) = self.pcap.as_mut() {
            let (src, dst) = if rec.outgoing { (local, rec.peer.addr) } else { (rec.peer.addr, local) };
            let tcp = rec.peer.transport != sipact::actors::proto::transport::TransportKind::Udp;
            if let Err(e) = w.write(rec.at, src, dst, tcp, &rec.data) {
                self.pcap_error = Some(e.to_string());
                self.pcap = None;
            }
        }
        if !self.ladder {
            return;
        }
        let Ok(msg) = SipMessage::parse(rec.data.clone()) else { return };
        let Some(call_id) = msg.headers().call_id().map(str::to_owned) else { return };
        if self.printed.contains(&call_id) {
            return;
        }
        let entry = Entry {
            at: rec.at,
            outgoing: rec.outgoing,
            peer: rec.peer.addr,
            transport: rec.peer.transport.via_token(),
            label: ladder::label(&msg),
        };
        if !self.calls.contains_key(&call_id) {
            self.order.push(call_id.clone());
        }
        self.calls.entry(call_id).or_default().push(entry);
    }

    fn print(&mut self, call_id: &str) {
        if let Some(entries) = self.calls.remove(call_id) {
            let local = self.ua.local_addr();
            super::output::write_out(&ladder::render(call_id, local, &entries));
        }
        self.order.retain(|c| c != call_id);
        self.printed.insert(call_id.to_owned());
    }

    fn due(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = self.ending.drain(..).partition(|(t, _)| *t <= now);
        self.ending = later;
        for (_, c) in due {
            self.print(&c);
        }
    }
}

impl WireTap {
    /// Starts the tap on `ua` (inside the actix system), or `None` when
    /// neither a pcap file nor ladders are wanted.
    pub fn start(ua: &UserAgent, pcap: Option<PcapWriter>, ladder: bool) -> Option<WireTap> {
        if pcap.is_none() && !ladder {
            return None;
        }
        let mut wire = ua.wire();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut st = State {
            ua: ua.clone(),
            pcap,
            pcap_error: None,
            ladder,
            calls: HashMap::new(),
            order: Vec::new(),
            ending: Vec::new(),
            printed: HashSet::new(),
        };
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            // The tap closes when the user agent stops; the ladders wait for Finish.
            let mut open = true;
            loop {
                tokio::select! {
                    rec = wire.recv(), if open => match rec {
                        Some(rec) => st.record(rec),
                        None => open = false,
                    },
                    ctl = rx.recv() => match ctl {
                        Some(Ctl::Ended(c)) => st.ending.push((Instant::now() + GRACE, c)),
                        Some(Ctl::Finish(done)) => {
                            while let Ok(rec) = wire.try_recv() {
                                st.record(rec);
                            }
                            let ended: Vec<String> = st.ending.drain(..).map(|(_, c)| c).collect();
                            for c in ended {
                                st.print(&c);
                            }
                            // Whatever never became a call (REGISTER, OPTIONS...).
                            for c in std::mem::take(&mut st.order) {
                                st.print(&c);
                            }
                            let _ = done.send(st.pcap_error.take());
                            return;
                        }
                        None => break,
                    },
                    _ = tick.tick() => st.due(Instant::now()),
                }
            }
        });
        Some(WireTap { tx })
    }

    /// A call is over: print its ladder after the grace period.
    pub fn ended(&self, call_id: String) {
        let _ = self.tx.send(Ctl::Ended(call_id));
    }

    /// A sender for [`WireTap::ended`] usable from session tasks.
    pub fn ender(&self) -> Ender {
        Ender { tx: self.tx.clone() }
    }

    /// Prints every ladder left, closes the pcap file; returns the pcap
    /// write error, if any.
    pub async fn finish(self) -> Option<String> {
        // Let the last messages (a retransmitted 200 to BYE) arrive.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Ctl::Finish(tx)).is_err() {
            return None;
        }
        tokio::time::timeout(Duration::from_secs(5), rx).await.ok().and_then(Result::ok).flatten()
    }
}

/// Tells the tap that a call ended.
#[derive(Clone)]
pub struct Ender {
    tx: mpsc::UnboundedSender<Ctl>,
}

impl Ender {
    /// A call is over.
    pub fn ended(&self, call_id: String) {
        let _ = self.tx.send(Ctl::Ended(call_id));
    }
}
