//! Dialogs (RFC 3261 §12): the state shared by the two ends of a call,
//! enough to build the next in-dialog request. A dialog holds no transport
//! handle; requests are routed from its remote target and route set.

use sipact_message::ByteString;
use sipact_message::{
    Bytes, CSeq, Header, HeaderName, HeaderWriter, Method, NameAddr, Request, Response, Uri, Via, print_request,
};

/// Identifies a dialog from this side: Call-ID, local tag, remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: ByteString,
    /// Our tag.
    pub local_tag: ByteString,
    /// The peer's tag.
    pub remote_tag: ByteString,
}

/// Early (from a 1xx with a To tag) or confirmed (from a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Errors of in-dialog request checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// The message lacks a header a dialog needs.
    #[error("message lacks {0}")]
    MissingHeader(&'static str),
    /// The remote CSeq went backwards (§12.2.2: answer 500).
    #[error("CSeq {got} is lower than {last}")]
    CSeqOutOfOrder {
        /// Last remote CSeq.
        last: u32,
        /// Received CSeq.
        got: u32,
    },
}

/// One dialog.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialog {
    /// The identifier.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Our URI with display name (From in our requests), without tag.
    pub local: NameAddr,
    /// The peer's URI (To in our requests), without tag.
    pub remote: NameAddr,
    /// Last CSeq number we used.
    pub local_seq: u32,
    /// Last CSeq number the peer used, if any.
    pub remote_seq: Option<u32>,
    /// The peer's Contact URI: the Request-URI of our requests.
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<NameAddr>,
    /// Whether the dialog is secure (`sips:`).
    pub secure: bool,
}

fn untagged(a: &NameAddr) -> NameAddr {
    let mut a = a.clone();
    a.params.remove("tag");
    a
}

/// A copy of `a` in buffers of its own (see [`Dialog::detach`]).
impl Dialog {
    /// Another dialog created by the same INVITE (forking, §13.2.2.4): our
    /// side as in `self`, the peer's from `resp` (To tag, Contact,
    /// Record-Route), `invite_seq` as our last CSeq and `request_uri` as
    /// the remote target when `resp` has no Contact.
    pub fn fork(&self, resp: &Response, invite_seq: u32, request_uri: &Uri) -> Result<Dialog, DialogError> {
        let rh = &resp.headers;
        let to = rh.to().ok_or(DialogError::MissingHeader("To"))?;
        let remote_tag = to.tag().ok_or(DialogError::MissingHeader("To tag"))?;
        let mut route_set: Vec<NameAddr> = rh.record_routes().cloned().collect();
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: self.id.call_id.clone(),
                local_tag: self.id.local_tag.clone(),
                remote_tag: ByteString::from(remote_tag),
            },
            state: if resp.status < 200 { DialogState::Early } else { DialogState::Confirmed },
            local: self.local.clone(),
            remote: untagged(to),
            local_seq: invite_seq,
            remote_seq: None,
            remote_target: rh.contact().map(|c| c.uri.clone()).unwrap_or_else(|| request_uri.clone()),
            route_set,
            secure: self.secure,
        })
    }

    /// Copies the names, URIs and route set out of the received messages
    /// they were parsed from. Parsed values share the buffer of their
    /// message, so a long-lived dialog would otherwise keep whole
    /// datagrams alive.
    pub fn detach(&mut self) {
        self.id.call_id.detach();
        self.id.local_tag.detach();
        self.id.remote_tag.detach();
        self.local.detach();
        self.remote.detach();
        self.remote_target.detach();
        for r in &mut self.route_set {
            r.detach();
        }
    }
    /// The UAC side, from our request and a 1xx (with To tag) or 2xx response
    /// (§12.1.2): route set from Record-Route reversed, remote target from Contact.
    pub fn uac(req: &Request, resp: &Response) -> Result<Dialog, DialogError> {
        let rh = &resp.headers;
        let to = rh.to().ok_or(DialogError::MissingHeader("To"))?;
        let remote_tag = to.tag().ok_or(DialogError::MissingHeader("To tag"))?;
        let from = req.headers.from().ok_or(DialogError::MissingHeader("From"))?;
        let local_tag = from.tag().ok_or(DialogError::MissingHeader("From tag"))?;
        let call_id = req.headers.call_id().ok_or(DialogError::MissingHeader("Call-ID"))?;
        let seq = req.headers.cseq().ok_or(DialogError::MissingHeader("CSeq"))?.seq;
        let mut route_set: Vec<NameAddr> = rh.record_routes().cloned().collect();
        route_set.reverse();
        let remote_target = rh.contact().map(|c| c.uri.clone()).unwrap_or_else(|| req.uri.clone());
        Ok(Dialog {
            id: DialogId {
                call_id: ByteString::from(call_id),
                local_tag: ByteString::from(local_tag),
                remote_tag: ByteString::from(remote_tag),
            },
            state: if resp.status < 200 { DialogState::Early } else { DialogState::Confirmed },
            local: untagged(from),
            remote: untagged(to),
            local_seq: seq,
            remote_seq: None,
            remote_target,
            route_set,
            secure: matches!(&req.uri, Uri::Sip(u) if u.secure),
        })
    }

    /// The UAS side, from the request and the tag we put in To (§12.1.1):
    /// route set from Record-Route in order, remote target from Contact.
    pub fn uas(req: &Request, local_tag: &str, state: DialogState) -> Result<Dialog, DialogError> {
        let h = &req.headers;
        let from = h.from().ok_or(DialogError::MissingHeader("From"))?;
        let to = h.to().ok_or(DialogError::MissingHeader("To"))?;
        let call_id = h.call_id().ok_or(DialogError::MissingHeader("Call-ID"))?;
        let seq = h.cseq().ok_or(DialogError::MissingHeader("CSeq"))?.seq;
        let remote_target = h.contact().map(|c| c.uri.clone()).ok_or(DialogError::MissingHeader("Contact"))?;
        Ok(Dialog {
            id: DialogId {
                call_id: ByteString::from(call_id),
                local_tag: ByteString::from(local_tag),
                remote_tag: ByteString::from(from.tag().unwrap_or("")),
            },
            state,
            local: untagged(to),
            remote: untagged(from),
            local_seq: 0,
            remote_seq: Some(seq),
            remote_target,
            route_set: h.record_routes().cloned().collect(),
            secure: matches!(&req.uri, Uri::Sip(u) if u.secure),
        })
    }

    /// A request within the dialog (§12.2.1.1): Request-URI the remote
    /// target, Route the route set, From/To with tags, the next CSeq (ACK
    /// and CANCEL reuse `seq_for_ack`), and a top Via supplied by the caller.
    /// Strict routing (a first route without `lr`) puts that route in the
    /// Request-URI and the remote target last.
    pub fn request(&mut self, method: Method, via: sipact_message::Via, seq_for_ack: Option<u32>) -> Request {
        let seq = self.next_seq(&method, seq_for_ack);
        let (uri, routes) = match self.route_set.first() {
            Some(first) if !matches!(&first.uri, Uri::Sip(u) if u.lr()) => {
                let mut routes: Vec<NameAddr> = self.route_set[1..].to_vec();
                routes.push(NameAddr::new(self.remote_target.clone()));
                (first.uri.clone(), routes)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        };
        let mut from = self.local.clone();
        from.params.set("tag", Some(&self.id.local_tag));
        let mut to = self.remote.clone();
        if !self.id.remote_tag.is_empty() {
            to.params.set("tag", Some(&self.id.remote_tag));
        }
        let mut req = Request::new(method.clone(), uri);
        // One borrow of the (copy-on-write) header vector for all the pushes.
        let h = req.headers.as_mut_vec();
        h.push(Header::Via(via));
        h.push(Header::MaxForwards(70));
        for r in routes {
            h.push(Header::Route(r));
        }
        h.push(Header::From(from));
        h.push(Header::To(to));
        h.push(Header::CallId(self.id.call_id.clone()));
        h.push(Header::CSeq(CSeq { seq, method }));
        req
    }

    /// The ACK for the 2xx of the INVITE with CSeq `seq`, printed straight
    /// from the dialog: the bytes that printing
    /// `self.request(Method::Ack, via, Some(seq))` gives, without building
    /// that request. `None` when the route set's first hop is a strict
    /// router (the Request-URI and the routes are rearranged then; the
    /// built request handles that).
    pub fn print_ack(&mut self, via: &Via, seq: u32) -> Option<Bytes> {
        self.print_request(Method::Ack, via, Some(seq), |_| {})
    }

    /// [`Dialog::request`] printed without being built, for a request that
    /// is only ever sent: the same bytes (and the same use of the local
    /// sequence number), with the headers `extra` writes after the
    /// dialog's own, and no body. `None`, with nothing used up, when the
    /// route set's first hop is a strict router.
    pub fn print_request(
        &mut self,
        method: Method,
        via: &Via,
        seq_for_ack: Option<u32>,
        extra: impl FnOnce(&mut HeaderWriter<'_>),
    ) -> Option<Bytes> {
        if self.route_set.first().is_some_and(|first| !matches!(&first.uri, Uri::Sip(u) if u.lr())) {
            return None;
        }
        let seq = self.next_seq(&method, seq_for_ack);
        let remote_tag = (!self.id.remote_tag.is_empty()).then_some(&*self.id.remote_tag);
        Some(print_request(
            &method,
            &self.remote_target,
            |w| {
                w.via(via);
                w.max_forwards(70);
                for r in &self.route_set {
                    w.address(HeaderName::Route, r, None);
                }
                w.address(HeaderName::From, &self.local, Some(&self.id.local_tag));
                w.address(HeaderName::To, &self.remote, remote_tag);
                w.call_id(&self.id.call_id);
                w.cseq(seq, &method);
                extra(w);
            },
            &[],
        ))
    }

    /// The CSeq number of a new request: the INVITE's for its ACK or
    /// CANCEL, else the next local one.
    fn next_seq(&mut self, method: &Method, seq_for_ack: Option<u32>) -> u32 {
        match (method, seq_for_ack) {
            (Method::Ack | Method::Cancel, Some(s)) => s,
            _ => {
                self.local_seq = self.local_seq.wrapping_add(1).max(1);
                self.local_seq
            }
        }
    }

    /// Where a request of this dialog goes first: the first route, or the
    /// remote target when there is no route set.
    pub fn next_hop(&self) -> &Uri {
        self.route_set.first().map(|r| &r.uri).unwrap_or(&self.remote_target)
    }

    /// Checks and records the CSeq of an in-dialog request (§12.2.2); a
    /// target refresh (re-INVITE, UPDATE) updates the remote target.
    pub fn on_request(&mut self, req: &Request) -> Result<(), DialogError> {
        let seq = req.headers.cseq().ok_or(DialogError::MissingHeader("CSeq"))?.seq;
        if req.method != Method::Ack && req.method != Method::Cancel {
            if let Some(last) = self.remote_seq
                && seq <= last
            {
                return Err(DialogError::CSeqOutOfOrder { last, got: seq });
            }
            self.remote_seq = Some(seq);
        }
        if matches!(req.method, Method::Invite | Method::Update)
            && let Some(c) = req.headers.contact()
        {
            self.remote_target = c.uri.clone();
        }
        Ok(())
    }

    /// A 2xx to our target refresh updates the remote target (§12.2.1.2);
    /// a 2xx to the initial INVITE confirms an early dialog.
    pub fn on_response(&mut self, method: &Method, resp: &Response) {
        if (200..300).contains(&resp.status) {
            if matches!(method, Method::Invite | Method::Update)
                && let Some(c) = resp.headers.contact()
            {
                self.remote_target = c.uri.clone();
            }
            if *method == Method::Invite && self.state == DialogState::Early {
                self.state = DialogState::Confirmed;
                let mut rr: Vec<NameAddr> = resp.headers.record_routes().cloned().collect();
                if !rr.is_empty() {
                    rr.reverse();
                    self.route_set = rr;
                }
            }
        }
    }
}
