//! REGISTER client (RFC 3261 §10): binding, refresh before expiry,
//! unregistration, `Min-Expires` retry, and learning the public address
//! from `received`/`rport` (RFC 3581) to fix the Contact.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sipact_message::ByteString;
use sipact_message::{CSeq, Contact, Header, Host, Method, NameAddr, Request, Response, Uri};

/// Registration state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    /// Nothing registered.
    Unregistered,
    /// A REGISTER is in flight.
    Registering,
    /// Bound until `expires`.
    Registered,
    /// Removing the binding.
    Unregistering,
}

/// What happened to a registration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RegEvent {
    /// The registrar accepted the binding for `expires` seconds.
    Registered {
        /// Granted lifetime.
        expires: u32,
        /// Contacts the registrar returned.
        contacts: Vec<NameAddr>,
    },
    /// The binding was removed.
    Unregistered,
    /// The registrar refused (or timed out: status 408).
    Failed {
        /// Final status.
        status: u16,
    },
    /// The Contact was rewritten to the address the registrar saw.
    ContactChanged {
        /// The new Contact URI.
        contact: Uri,
    },
}

/// One registration towards a registrar.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Registrar URI (Request-URI).
    pub registrar: Uri,
    /// Address of record (From/To).
    pub aor: NameAddr,
    /// Our Contact.
    pub contact: NameAddr,
    /// Requested lifetime.
    pub expires: u32,
    /// State.
    pub state: RegState,
    call_id: ByteString,
    tag: ByteString,
    cseq: u32,
    refresh_at: Option<Instant>,
    retried_interval: bool,
}

impl Registration {
    /// A registration; nothing is sent until [`Registration::request`].
    pub fn new(registrar: Uri, aor: NameAddr, contact: NameAddr, expires: u32, call_id: &str, tag: &str) -> Self {
        Registration {
            registrar,
            aor,
            contact,
            expires,
            state: RegState::Unregistered,
            call_id: ByteString::from(call_id),
            tag: ByteString::from(tag),
            cseq: 0,
            refresh_at: None,
            retried_interval: false,
        }
    }

    /// When the binding must be refreshed.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.refresh_at
    }

    /// The next REGISTER (the caller adds the Via and sends it): same
    /// Call-ID and increasing CSeq for every refresh (§10.2.4). `unregister`
    /// asks for `Expires: 0`.
    pub fn request(&mut self, via: sipact_message::Via, unregister: bool) -> Request {
        self.cseq += 1;
        let mut r = Request::new(Method::Register, self.registrar.clone());
        r.headers.push(Header::Via(via));
        r.headers.push(Header::MaxForwards(70));
        let mut from = self.aor.clone();
        from.params.set("tag", Some(&self.tag));
        r.headers.push(Header::From(from));
        r.headers.push(Header::To(self.aor.clone()));
        r.headers.push(Header::CallId(self.call_id.clone()));
        r.headers.push(Header::CSeq(CSeq { seq: self.cseq, method: Method::Register }));
        r.headers.push(Header::Contact(Contact::Addr(self.contact.clone())));
        r.headers.push(Header::Expires(if unregister { 0 } else { self.expires }));
        self.state = if unregister { RegState::Unregistering } else { RegState::Registering };
        self.refresh_at = None;
        r
    }

    /// Handles the final response. Returns the events and whether the
    /// REGISTER must be sent again at once (Min-Expires, new Contact).
    pub fn handle_response(&mut self, now: Instant, resp: &Response) -> (Vec<RegEvent>, bool) {
        let mut events = Vec::new();
        let status = resp.status;
        if status < 200 {
            return (events, false);
        }
        if (200..300).contains(&status) {
            if self.state == RegState::Unregistering {
                self.state = RegState::Unregistered;
                events.push(RegEvent::Unregistered);
                return (events, false);
            }
            // RFC 3581: learn the address the registrar saw; if our Contact
            // names another, rewrite it and register again.
            if let Some(new_contact) = self.learned_contact(resp) {
                self.contact.uri = new_contact.clone();
                events.push(RegEvent::ContactChanged { contact: new_contact });
                return (events, true);
            }
            let contacts: Vec<NameAddr> = resp.headers.contacts().filter_map(|c| c.addr().cloned()).collect();
            let granted = contacts
                .iter()
                .find(|c| c.uri == self.contact.uri)
                .and_then(NameAddr::expires)
                .or(resp.headers.expires())
                .unwrap_or(self.expires);
            self.state = RegState::Registered;
            self.retried_interval = false;
            // Refresh ahead of expiry: 30 s early for long bindings, at half
            // time for short ones (PJSIP and SIP.js refresh similarly early).
            let lead = if granted > 60 { 30 } else { granted / 2 };
            self.refresh_at = Some(now + Duration::from_secs(u64::from(granted - lead)));
            events.push(RegEvent::Registered { expires: granted, contacts });
            return (events, false);
        }
        if status == 423 && !self.retried_interval {
            // §10.2.8: retry with at least Min-Expires.
            let min = resp.headers.iter().find_map(|h| match h {
                Header::MinExpires(m) => Some(*m),
                _ => None,
            });
            if let Some(m) = min {
                self.expires = self.expires.max(m);
                self.retried_interval = true;
                return (events, true);
            }
        }
        self.state = RegState::Unregistered;
        events.push(RegEvent::Failed { status });
        (events, false)
    }

    /// The transaction failed without a response.
    pub fn handle_timeout(&mut self) -> RegEvent {
        self.state = RegState::Unregistered;
        self.refresh_at = None;
        RegEvent::Failed { status: 408 }
    }

    fn learned_contact(&self, resp: &Response) -> Option<Uri> {
        let via = resp.headers.via()?;
        let received: IpAddr = via.received()?.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
        let port = via.rport().flatten().or(via.port);
        let Uri::Sip(mut u) = self.contact.uri.clone() else { return None };
        let host = match received {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        };
        if u.host == host && (port.is_none() || u.port == port) {
            return None;
        }
        u.host = host;
        if port.is_some() {
            u.port = port;
        }
        Some(Uri::Sip(u))
    }
}
