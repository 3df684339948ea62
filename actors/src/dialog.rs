//! The dialog actor: a thin shell around the sans-IO [`UserAgentCore`]
//! run with an external transaction layer
//! ([`UserAgentCore::new_external`]). It feeds the core the transaction
//! actor's events ([`TxEventMsg`]), the API's commands and the time; sends
//! the core's transaction commands to the transaction actor
//! ([`TxCommandMsg`]), its session events to the session actors, and starts
//! the media actors; and arms one timer from `poll_timeout` (session and
//! registration timers: the transaction timers live in the transaction
//! actor). A request of an established dialog crosses transport ->
//! [`TransactionActor`] -> dialog actor -> session actor.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use actix::prelude::*;
use sipact_message::{Header, Method, Request};
use sipact_proto::register::RegEvent;
use sipact_proto::session::{Body, Extras, SessionEvent};
use sipact_proto::ua::{InviteOptions, UaEvent, UserAgentCore};
use sipact_proto::{Direction, UaError};
use tokio::sync::{mpsc, oneshot};

use crate::deadline::Deadline;
use crate::media::{AudioFactory, MediaHandle, MediaReport, PendingMedia, SendDtmf, lock};
use crate::messages::{GetStats, PipelineStats, TxCommandMsg, TxEventMsg};
use crate::session::{Deliver, SessionActor, SessionInfo};
use crate::transaction::TransactionActor;

pub use crate::messages::Stop;
pub use crate::transaction::{SubscribeWire, WireRecord};

/// A command for one session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionCmd {
    /// Sets the modifiers of the session's next description exchanges
    /// (given with hold, unhold, reinvite or accept).
    SetModifiers(Vec<sipact_proto::ua::DescriptionModifier>),
    /// Provisional response.
    Progress {
        /// Status, 101..=199.
        status: u16,
        /// Send our description (early media).
        early_media: bool,
        /// Ask for a reliable provisional.
        reliable: bool,
    },
    /// Accept.
    Accept,
    /// Reject with a status.
    Reject(u16),
    /// Any response to the INVITE (SIP.js `reply`).
    Reply {
        /// Status, 101-699.
        status: u16,
        /// Reason phrase instead of the default one.
        reason: Option<String>,
        /// Extra headers and body.
        extras: Extras,
    },
    /// BYE, with a `Reason` header (cause, text) and extras.
    Bye {
        /// Cause and text of the `Reason` header.
        reason: Option<(u16, String)>,
        /// Extra headers and body.
        extras: Extras,
    },
    /// CANCEL.
    Cancel,
    /// SIP.js terminate.
    Terminate {
        /// Final status (unanswered inbound) or `Reason` cause (BYE).
        status: Option<u16>,
        /// Reason phrase or `Reason` text.
        reason: Option<String>,
        /// Extra headers and body.
        extras: Extras,
    },
    /// A re-INVITE or UPDATE: hold, unhold, or a fresh offer.
    Renegotiate {
        /// The API method (`hold`, `unhold`, `reinvite`).
        op: &'static str,
        /// The hold state to ask for (`None` keeps it).
        hold: Option<bool>,
        /// UPDATE instead of re-INVITE.
        use_update: bool,
        /// A re-INVITE without offer.
        without_sdp: bool,
        /// Extra headers.
        extra: Vec<Header>,
    },
    /// DTMF by INFO.
    Dtmf {
        /// The tones.
        tones: String,
        /// Tone duration in ms.
        duration: u32,
        /// Gap in ms.
        gap: u32,
        /// Extra headers on each INFO.
        extra: Vec<Header>,
    },
    /// INFO with a body.
    Info(Body),
    /// REFER to a URI, attended when a session id is given.
    Refer {
        /// The Refer-To URI.
        target: String,
        /// The session whose dialog the target replaces (attended).
        replaces: Option<u64>,
        /// Extra headers.
        extra: Vec<Header>,
    },
}

impl SessionCmd {
    /// The name of the API method behind the command, as reported in
    /// [`SessionError::InvalidState`](sipact_proto::SessionError::InvalidState).
    pub fn op(&self) -> &'static str {
        match self {
            SessionCmd::SetModifiers(_) => "modifiers",
            SessionCmd::Progress { .. } => "progress",
            SessionCmd::Accept => "accept",
            SessionCmd::Reject(_) => "reject",
            SessionCmd::Reply { .. } => "reply",
            SessionCmd::Bye { .. } => "bye",
            SessionCmd::Cancel => "cancel",
            SessionCmd::Terminate { .. } => "terminate",
            SessionCmd::Renegotiate { op, .. } => op,
            SessionCmd::Dtmf { .. } => "dtmf",
            SessionCmd::Info(_) => "info",
            SessionCmd::Refer { .. } => "refer",
        }
    }
}

/// Runs a session command.
#[derive(Message)]
#[rtype(result = "Result<(), UaError>")]
pub struct Command {
    /// Session id.
    pub id: u64,
    /// Command.
    pub cmd: SessionCmd,
}

/// Starts an outbound session.
#[derive(Message)]
#[rtype(result = "Result<SessionInfo, UaError>")]
pub struct Invite {
    /// Target.
    pub target: String,
    /// Options.
    pub opts: InviteOptions,
}

/// Follows a REFER received in session `id`.
#[derive(Message)]
#[rtype(result = "Result<SessionInfo, UaError>")]
pub struct FollowRefer {
    /// The session that got the REFER.
    pub id: u64,
    /// The REFER.
    pub refer: Request,
}

/// Registers (expires > 0) or unregisters.
#[derive(Message)]
#[rtype(result = "Result<(), UaError>")]
pub struct Register {
    /// Registrar URI; `None` unregisters.
    pub registrar: Option<String>,
    /// Lifetime.
    pub expires: u32,
}

/// Sends OPTIONS or MESSAGE and waits for the final status.
#[derive(Message)]
#[rtype(result = "Result<oneshot::Receiver<u16>, UaError>")]
pub struct OutOfDialog {
    /// Method.
    pub method: Method,
    /// Target URI.
    pub target: String,
    /// Body (MESSAGE).
    pub body: Option<Body>,
}

/// Subscribes to inbound sessions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeIncoming(pub mpsc::UnboundedSender<SessionInfo>);

/// Subscribes to registration events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeRegistration(pub mpsc::UnboundedSender<RegEvent>);

/// Ends every session (BYE or CANCEL, 480 for unanswered inbound ones),
/// unregisters, and answers once nothing is left or `deadline` passes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Stop> for DialogActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Ids of the live sessions.
#[derive(Message)]
#[rtype(result = "Vec<u64>")]
pub struct ListSessions;

/// The dialog actor: dialogs, INVITE sessions, registration and
/// out-of-dialog requests, over the transaction actor.
pub struct DialogActor {
    core: UserAgentCore,
    transactions: Addr<TransactionActor>,
    stats: PipelineStats,
    timer: Deadline,
    sessions: HashMap<u64, (Addr<SessionActor>, SessionInfo)>,
    incoming: Vec<mpsc::UnboundedSender<SessionInfo>>,
    reg_subs: Vec<mpsc::UnboundedSender<RegEvent>>,
    pending: HashMap<u64, oneshot::Sender<u16>>,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
    /// One span per live session (id, call-id, local tag, direction).
    spans: HashMap<u64, tracing::Span>,
    /// RTP media, when the user agent has it.
    media: Option<MediaWiring>,
    /// The media actor and description handler of each session with media.
    media_actors: HashMap<u64, MediaHandle>,
}

/// The former name of [`DialogActor`], when one actor ran the whole core.
pub type CoreActor = DialogActor;

/// What the dialog actor needs to start media actors.
pub(crate) struct MediaWiring {
    /// Sockets and handlers made by the hooks factory, by session id.
    pub(crate) pending: PendingMedia,
    /// The application's audio per session.
    pub(crate) audio: AudioFactory,
    /// DTMF as RFC 4733 telephone-events rather than INFO.
    pub(crate) rfc4733: bool,
}

/// The name of an event (see [`SessionEvent::name`]).
fn event_name(e: &SessionEvent) -> &'static str {
    e.name()
}

impl DialogActor {
    /// A dialog actor around `core` (made with
    /// [`UserAgentCore::new_external`]), whose transactions run in
    /// `transactions`.
    pub fn new(core: UserAgentCore, transactions: Addr<TransactionActor>) -> Self {
        DialogActor {
            core,
            transactions,
            stats: PipelineStats { actor: "dialog", ..PipelineStats::default() },
            timer: Deadline::default(),
            sessions: HashMap::new(),
            incoming: Vec::new(),
            reg_subs: Vec::new(),
            pending: HashMap::new(),
            shutdown_waiters: Vec::new(),
            spans: HashMap::new(),
            media: None,
            media_actors: HashMap::new(),
        }
    }

    /// With RTP media: a media actor per session whose hooks the factory
    /// made with a socket.
    pub(crate) fn with_media(mut self, media: MediaWiring) -> Self {
        self.media = Some(media);
        self
    }

    /// Starts the media actor of a new session, if the hooks factory set
    /// one up for it.
    fn start_media(&mut self, info: &SessionInfo, ctx: &mut Context<Self>) {
        let Some(m) = &self.media else { return };
        let Some(setup) = lock(&m.pending).remove(&info.id()) else { return };
        let audio = (m.audio)(info.id());
        match MediaHandle::start(setup, audio, ctx.address(), info.clone()) {
            Ok(handle) => {
                // Counters exist from the start, before the actor first runs.
                info.set_media_stats(crate::media::MediaStats::default());
                self.media_actors.insert(info.id(), handle);
            }
            Err(e) => tracing::warn!(session = info.id(), error = %e, "no media for the session"),
        }
    }

    /// Drops what the hooks factory set up for sessions that never came to be.
    fn purge_pending_media(&mut self) {
        let Some(m) = &self.media else { return };
        let mut p = lock(&m.pending);
        if !p.is_empty() {
            let core = &self.core;
            p.retain(|id, _| core.session(*id).is_some() && !self.sessions.contains_key(id));
        }
    }

    /// The session's span, or a disabled one.
    fn span(&self, id: u64) -> tracing::Span {
        self.spans.get(&id).cloned().unwrap_or_else(tracing::Span::none)
    }

    fn session_actor(&mut self, id: u64, direction: Direction, ctx: &mut Context<Self>) -> SessionInfo {
        let descriptions = self.core.take_descriptions(id);
        let s = self.core.session(id);
        let request = s.map(|s| s.request().clone());
        let local_tag = s.map(|s| s.local_tag().to_owned());
        let span = tracing::debug_span!(
            "session",
            id,
            ?direction,
            call_id = request.as_ref().and_then(|r| r.headers.call_id()).unwrap_or(""),
            local_tag = local_tag.as_deref().unwrap_or(""),
        );
        span.in_scope(|| tracing::debug!("session started"));
        self.spans.insert(id, span);
        let info = SessionInfo::new(id, direction, request, local_tag, ctx.address());
        if let Some((local, remote)) = descriptions {
            info.set_descriptions(local, remote);
        }
        let actor = SessionActor::new(info.clone()).start();
        self.sessions.insert(id, (actor, info.clone()));
        self.start_media(&info, ctx);
        info
    }

    /// Drains the core after any input: transaction commands, events, the timer.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        self.flush();
        while let Some(ev) = self.core.poll_event() {
            self.on_event(ev, ctx);
        }
        // Transmits made while handling events.
        self.flush();
        self.arm(ctx);
        self.purge_pending_media();
        if !self.shutdown_waiters.is_empty() && self.core.session_ids().is_empty() {
            for w in self.shutdown_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    /// Sends the core's transaction commands to the transaction actor, in order.
    fn flush(&mut self) {
        while let Some(c) = self.core.poll_tx_command() {
            self.stats.commands += 1;
            self.transactions.do_send(TxCommandMsg(c));
        }
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = self.core.poll_timeout();
        self.timer.arm(
            next,
            ctx,
            |a| &mut a.timer,
            |act, ctx| {
                act.core.handle_timeout(Instant::now());
                act.pump(ctx);
            },
        );
    }

    fn on_event(&mut self, ev: UaEvent, ctx: &mut Context<Self>) {
        match ev {
            UaEvent::Incoming { session, replaces, .. } => {
                let mut info = self.session_actor(session, Direction::Inbound, ctx);
                info.set_replaces(replaces);
                self.incoming.retain(|tx| tx.send(info.clone()).is_ok());
                if self.incoming.is_empty() {
                    // Nobody takes calls: decline rather than ring for ever.
                    let now = Instant::now();
                    let _ = self.core.reject(now, session, 480);
                }
            }
            UaEvent::Session { session, event } => {
                if let Some((a, _)) = self.sessions.get(&session) {
                    let last = matches!(event, SessionEvent::Terminated { .. });
                    self.span(session).in_scope(|| tracing::debug!(event = event_name(&event), "session event"));
                    if last {
                        self.spans.remove(&session);
                    }
                    self.stats.session_events += 1;
                    a.do_send(Deliver { event, at: SystemTime::now() });
                    if last {
                        self.sessions.remove(&session);
                        if let Some(m) = self.media_actors.remove(&session) {
                            m.stop();
                        }
                    }
                }
            }
            UaEvent::Descriptions { session, local, remote } => {
                // Written at once: whoever sees the events that follow the
                // exchange finds the descriptions already there.
                if let Some((_, info)) = self.sessions.get(&session) {
                    info.set_descriptions(local.map(|b| *b), remote.map(|b| *b));
                }
            }
            UaEvent::Registration(r) => self.reg_subs.retain(|tx| tx.send(r.clone()).is_ok()),
            UaEvent::RequestDone { id, status, .. } => {
                if let Some(tx) = self.pending.remove(&id) {
                    let _ = tx.send(status);
                }
            }
            UaEvent::Message { request } => {
                tracing::info!(from = ?request.headers.from().map(|f| f.uri.to_string()), "MESSAGE received");
            }
            other => tracing::debug!(?other, "ua event"),
        }
    }
}

impl DialogActor {
    /// The media actor to send DTMF of session `id` through, when DTMF goes
    /// in the media and telephone-event was negotiated.
    fn rfc4733(&self, id: u64) -> Option<MediaHandle> {
        if !self.media.as_ref().is_some_and(|m| m.rfc4733) {
            return None;
        }
        self.media_actors.get(&id).filter(|m| m.telephone_event()).cloned()
    }

    /// Delivers an event that did not come from the protocol core (media).
    fn deliver(&mut self, id: u64, event: SessionEvent) {
        if let Some((a, _)) = self.sessions.get(&id) {
            self.span(id).in_scope(|| tracing::debug!(event = event_name(&event), "session event"));
            a.do_send(Deliver { event, at: SystemTime::now() });
            self.stats.session_events += 1;
        }
    }
}

impl Handler<MediaReport> for DialogActor {
    type Result = ();
    fn handle(&mut self, m: MediaReport, ctx: &mut Self::Context) {
        match m {
            MediaReport::Dtmf { session, digit, duration } => {
                let event = SessionEvent::Dtmf { request: None, tone: digit, duration, outgoing: false };
                self.deliver(session, event);
            }
            MediaReport::Timeout { session } => {
                self.span(session).in_scope(|| tracing::info!("RTP timeout: ending the session"));
                if let Err(e) = self.core.end_for_media(Instant::now(), session, sipact_proto::Cause::RtpTimeout) {
                    tracing::debug!(session, error = %e, "RTP timeout not acted on");
                }
                self.pump(ctx);
            }
        }
    }
}

impl Actor for DialogActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Commands and received messages can queue up under load.
        ctx.set_mailbox_capacity(1 << 16);
    }
}

impl Handler<TxEventMsg> for DialogActor {
    type Result = ();
    fn handle(&mut self, m: TxEventMsg, ctx: &mut Self::Context) {
        self.stats.events += 1;
        self.core.handle_tx_event(Instant::now(), m.0);
        self.pump(ctx);
    }
}

impl Handler<GetStats> for DialogActor {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(PipelineStats { live: self.core.session_ids().len() as u64, ..self.stats.clone() })
    }
}

impl Handler<Invite> for DialogActor {
    type Result = Result<SessionInfo, UaError>;
    fn handle(&mut self, m: Invite, ctx: &mut Self::Context) -> Self::Result {
        let id = self.core.invite(Instant::now(), &m.target, m.opts)?;
        let info = self.session_actor(id, Direction::Outbound, ctx);
        self.pump(ctx);
        Ok(info)
    }
}

impl Handler<FollowRefer> for DialogActor {
    type Result = Result<SessionInfo, UaError>;
    fn handle(&mut self, m: FollowRefer, ctx: &mut Self::Context) -> Self::Result {
        let id = self.core.follow_refer(Instant::now(), m.id, &m.refer)?;
        let info = self.session_actor(id, Direction::Outbound, ctx);
        self.pump(ctx);
        Ok(info)
    }
}

impl Handler<Command> for DialogActor {
    type Result = Result<(), UaError>;
    fn handle(&mut self, m: Command, ctx: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let id = m.id;
        let span = self.span(id);
        let _entered = span.enter();
        tracing::debug!(op = m.cmd.op(), "session command");
        let r = match m.cmd {
            SessionCmd::SetModifiers(mods) => self.core.set_call_modifiers(id, mods),
            SessionCmd::Progress { status, early_media, reliable } => {
                self.core.progress(now, id, status, early_media, reliable)
            }
            SessionCmd::Accept => self.core.accept(now, id),
            SessionCmd::Reject(s) => self.core.reject(now, id, s),
            SessionCmd::Reply { status, reason, extras } => {
                self.core.reply(now, id, status, reason.as_deref(), &extras)
            }
            SessionCmd::Bye { reason, extras } => {
                self.core.bye_with(now, id, reason.as_ref().map(|(c, t)| (*c, t.as_str())), &extras)
            }
            SessionCmd::Cancel => self.core.cancel(now, id),
            SessionCmd::Terminate { status, reason, extras } => {
                self.core.terminate_with(now, id, status, reason.as_deref(), &extras)
            }
            SessionCmd::Renegotiate { op, hold, use_update, without_sdp, extra } => {
                self.core.renegotiate_with(now, id, op, hold, use_update, without_sdp, &extra)
            }
            SessionCmd::Dtmf { tones, duration, gap, extra } => match self.rfc4733(id) {
                Some(media) => self.core.check_dtmf(id, &tones, duration, gap).map(|()| {
                    media.dtmf(SendDtmf {
                        tones: tones.clone(),
                        duration: std::time::Duration::from_millis(u64::from(duration)),
                        gap: std::time::Duration::from_millis(u64::from(gap)),
                    });
                    for tone in tones.chars().filter(|c| *c != ',') {
                        let event = SessionEvent::Dtmf {
                            request: None,
                            tone: tone.to_ascii_uppercase(),
                            duration,
                            outgoing: true,
                        };
                        self.deliver(id, event);
                    }
                }),
                None => self.core.dtmf_with(now, id, &tones, duration, gap, &extra),
            },
            SessionCmd::Info(b) => self.core.info(now, id, b),
            SessionCmd::Refer { target, replaces, extra } => self.core.refer_with(now, id, &target, replaces, &extra),
        };
        self.pump(ctx);
        r
    }
}

impl Handler<Register> for DialogActor {
    type Result = Result<(), UaError>;
    fn handle(&mut self, m: Register, ctx: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let r = match m.registrar {
            Some(reg) => self.core.register(now, &reg, m.expires),
            None => self.core.unregister(now),
        };
        self.pump(ctx);
        r
    }
}

impl Handler<OutOfDialog> for DialogActor {
    type Result = Result<oneshot::Receiver<u16>, UaError>;
    fn handle(&mut self, m: OutOfDialog, ctx: &mut Self::Context) -> Self::Result {
        let id = self.core.request(Instant::now(), m.method, &m.target, m.body)?;
        let (tx, rx) = oneshot::channel();
        self.pending.insert(id, tx);
        self.pump(ctx);
        Ok(rx)
    }
}

impl Handler<SubscribeIncoming> for DialogActor {
    type Result = ();
    fn handle(&mut self, m: SubscribeIncoming, _: &mut Self::Context) {
        self.incoming.push(m.0);
    }
}

impl Handler<SubscribeWire> for DialogActor {
    type Result = ();
    fn handle(&mut self, m: SubscribeWire, _: &mut Self::Context) {
        // The wire is the transaction actor's.
        self.transactions.do_send(m);
    }
}

impl Handler<SubscribeRegistration> for DialogActor {
    type Result = ();
    fn handle(&mut self, m: SubscribeRegistration, _: &mut Self::Context) {
        self.reg_subs.push(m.0);
    }
}

impl Handler<ListSessions> for DialogActor {
    type Result = MessageResult<ListSessions>;
    fn handle(&mut self, _: ListSessions, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.session_ids())
    }
}

impl Handler<Shutdown> for DialogActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        for id in self.core.session_ids() {
            let _ = self.core.terminate(now, id);
        }
        let _ = self.core.unregister(now);
        let (tx, rx) = oneshot::channel();
        self.shutdown_waiters.push(tx);
        self.pump(ctx);
        Box::pin(async move {
            // Bounded: a peer that never answers cannot hold us up past 64*T1.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(35), rx).await;
        })
    }
}
