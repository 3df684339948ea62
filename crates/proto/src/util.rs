//! Helpers for building messages shared by the layers.

use sipact_message::{ByteString, Header, Host, Request, Response};

use crate::transport::Peer;

/// The RFC 3261 magic cookie that starts every branch this stack makes.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// A response to `req` per RFC 3261 §8.2.6.2: the Via headers, From, To,
/// Call-ID and CSeq copied; `to_tag` added to To when it has none (never for
/// 100 Trying, which the caller makes with `None`).
pub fn response_for(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
    let mut resp = Response::new(status);
    // One borrow of the (shared, copy-on-write) vector for all the pushes.
    let out = resp.headers.as_mut_vec();
    for h in req.headers.iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => out.push(h.clone()),
            Header::To(to) => {
                let mut to = to.clone();
                if let Some(tag) = to_tag
                    && to.tag().is_none()
                {
                    to.params.set("tag", Some(tag));
                }
                out.push(Header::To(to));
            }
            _ => {}
        }
    }
    resp
}

/// Stamps the top Via of a received request (RFC 3261 §18.2.1, RFC 3581 §4):
/// `received` when the sent-by host is not the source address, or whenever
/// `rport` is present; `rport` filled with the source port when requested.
pub fn stamp_via(req: &mut Request, source: &Peer) {
    let Some(Header::Via(via)) = req.headers.as_mut_vec().iter_mut().find(|h| matches!(h, Header::Via(_))) else {
        return;
    };
    let ip = source.addr.ip();
    let same_host = match &via.host {
        Host::Ipv4(a) => std::net::IpAddr::V4(*a) == ip,
        Host::Ipv6(a) => std::net::IpAddr::V6(*a) == ip,
        Host::Domain(_) => false,
    };
    let rport = via.params.contains("rport");
    if rport || !same_host {
        via.params.set_string("received", Some(ByteString::from_ip(ip)));
    }
    if rport {
        via.params.set_string("rport", Some(ByteString::from_u32(u32::from(source.addr.port()))));
    }
}
