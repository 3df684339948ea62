//! The transaction actor: a thin shell around the sans-IO
//! [`TransactionLayer`]. Transports deliver what they receive here; the
//! actor feeds the layer received bytes, the dialog actor's
//! [`TxCommandMsg`]s and the time, sends the layer's transmits to the
//! transport registry, hands each [`TxEvent`](sipact_proto::TxEvent) to the
//! dialog actor as a [`TxEventMsg`], and arms one timer from the layer's
//! `poll_timeout`. Every transaction timer (A to M) lives here.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use actix::prelude::*;
use sipact_message::Method;
use sipact_proto::TransactionLayer;
use sipact_proto::transport::Peer;
use tokio::sync::mpsc;

use crate::deadline::Deadline;
use crate::messages::{FlowClosed, GetStats, PipelineStats, Received, Send, Stop, TxCommandMsg, TxEventMsg};
use crate::transport::{FlowAssigned, TransportRegistry};

/// One SIP message crossing the wire, for taps (ladders, pcap, tests).
#[derive(Debug, Clone)]
pub struct WireRecord {
    /// True when we sent it.
    pub outgoing: bool,
    /// The far end.
    pub peer: Peer,
    /// The bytes.
    pub data: bytes::Bytes,
    /// When.
    pub at: SystemTime,
}

/// Subscribes to every message sent and received.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeWire(pub mpsc::UnboundedSender<WireRecord>);

/// How many transaction branches are remembered for logging.
const LOGGED_BRANCHES: usize = 256;

/// The transaction actor.
pub struct TransactionActor {
    layer: TransactionLayer,
    registry: Addr<TransportRegistry>,
    /// The transaction user: the dialog actor.
    user: Recipient<TxEventMsg>,
    timer: Deadline,
    taps: Vec<mpsc::UnboundedSender<WireRecord>>,
    /// Branches of the transactions logged lately, so that a
    /// retransmission is not logged as a new transaction.
    logged: VecDeque<String>,
    stats: PipelineStats,
}

impl TransactionActor {
    /// An actor around `layer`, sending through `registry` and telling
    /// `user` (the dialog actor) every transaction event.
    pub fn new(layer: TransactionLayer, registry: Addr<TransportRegistry>, user: Recipient<TxEventMsg>) -> Self {
        TransactionActor {
            layer,
            registry,
            user,
            timer: Deadline::default(),
            taps: Vec::new(),
            logged: VecDeque::new(),
            stats: PipelineStats { actor: "transaction", ..PipelineStats::default() },
        }
    }

    /// Drains the layer after any input: transmits, events, the timer.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while let Some(t) = self.layer.poll_transmit() {
            self.log_transaction(true, &t.peer, &t.data);
            if !self.taps.is_empty() {
                let rec = WireRecord { outgoing: true, peer: t.peer, data: t.data.clone(), at: SystemTime::now() };
                self.taps.retain(|tx| tx.send(rec.clone()).is_ok());
            }
            self.stats.transmits += 1;
            self.registry.do_send(Send(t));
        }
        while let Some(ev) = self.layer.poll_event() {
            self.stats.events += 1;
            self.user.do_send(TxEventMsg(ev));
        }
        self.arm(ctx);
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = self.layer.poll_timeout();
        self.timer.arm(
            next,
            ctx,
            |a| &mut a.timer,
            |act, ctx| {
                act.layer.handle_timeout(Instant::now());
                act.pump(ctx);
            },
        );
    }

    /// Logs (at debug) the start of each transaction: a request other than
    /// ACK whose branch was not seen lately. Parses only when debug is on.
    fn log_transaction(&mut self, outgoing: bool, peer: &Peer, data: &bytes::Bytes) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let Ok(sipact_message::SipMessage::Request(r)) = sipact_message::SipMessage::parse(data.clone()) else {
            return;
        };
        if r.method == Method::Ack {
            return;
        }
        let branch = r.headers.via().and_then(|v| v.branch()).unwrap_or("").to_owned();
        let key = format!("{}{branch}{}", if outgoing { '>' } else { '<' }, r.method);
        if self.logged.contains(&key) {
            return;
        }
        if self.logged.len() >= LOGGED_BRANCHES {
            self.logged.pop_front();
        }
        self.logged.push_back(key);
        tracing::debug!(
            kind = if outgoing { "client" } else { "server" },
            method = %r.method,
            %peer,
            call_id = r.headers.call_id().unwrap_or(""),
            cseq = r.headers.cseq().map(|c| c.seq).unwrap_or(0),
            %branch,
            "transaction started"
        );
    }
}

impl Actor for TransactionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Received messages and commands can queue up under load.
        ctx.set_mailbox_capacity(1 << 16);
    }
}

impl Handler<Received> for TransactionActor {
    type Result = ();
    fn handle(&mut self, m: Received, ctx: &mut Self::Context) {
        self.stats.received += 1;
        if !self.taps.is_empty() {
            let rec = WireRecord { outgoing: false, peer: m.peer, data: m.data.clone(), at: SystemTime::now() };
            self.taps.retain(|tx| tx.send(rec.clone()).is_ok());
        }
        self.log_transaction(false, &m.peer, &m.data);
        if let Err(e) = self.layer.handle_bytes(Instant::now(), m.peer, m.data) {
            tracing::debug!(from = %m.peer, error = %e, "unparseable message");
        }
        self.pump(ctx);
    }
}

impl Handler<TxCommandMsg> for TransactionActor {
    type Result = ();
    fn handle(&mut self, m: TxCommandMsg, ctx: &mut Self::Context) {
        self.stats.commands += 1;
        if let Err(e) = self.layer.handle_command(Instant::now(), m.0) {
            tracing::debug!(error = %e, "transaction command refused");
        }
        self.pump(ctx);
    }
}

impl Handler<FlowClosed> for TransactionActor {
    type Result = ();
    fn handle(&mut self, m: FlowClosed, ctx: &mut Self::Context) {
        self.layer.handle_flow_closed(m.flow);
        self.pump(ctx);
    }
}

impl Handler<FlowAssigned> for TransactionActor {
    type Result = ();
    fn handle(&mut self, m: FlowAssigned, ctx: &mut Self::Context) {
        self.layer.handle_flow_assigned(m.transport, m.remote, m.flow);
        self.pump(ctx);
    }
}

impl Handler<SubscribeWire> for TransactionActor {
    type Result = ();
    fn handle(&mut self, m: SubscribeWire, _: &mut Self::Context) {
        self.taps.push(m.0);
    }
}

impl Handler<GetStats> for TransactionActor {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(PipelineStats { live: self.layer.len() as u64, ..self.stats.clone() })
    }
}

impl Handler<Stop> for TransactionActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
