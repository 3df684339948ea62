//! A signalling-only session description handler: real SDP bodies
//! (RFC 8866 / 3264) announcing audio, with no media behind them. It stands
//! in until the media handlers arrive and serves load generation.

use std::net::IpAddr;

use sipact_proto::session::{Body, DescriptionHooks};

/// Writes an audio offer (PCMU, PCMA, telephone-event) for `addr:port` and
/// answers offers by mirroring their direction; the origin version grows
/// with each new description (RFC 3264 §8).
#[derive(Debug, Clone)]
pub struct SignallingSdp {
    addr: IpAddr,
    port: u16,
    session_id: u64,
    version: u64,
}

impl SignallingSdp {
    /// A handler announcing `addr:port`.
    pub fn new(addr: IpAddr, port: u16, session_id: u64) -> Self {
        SignallingSdp { addr, port, session_id, version: 0 }
    }

    fn body(&mut self, direction: &str) -> Body {
        self.version += 1;
        let ip = match self.addr {
            IpAddr::V4(a) => format!("IP4 {a}"),
            IpAddr::V6(a) => format!("IP6 {a}"),
        };
        Body::sdp(format!(
            "v=0\r\no=sipact {} {} IN {ip}\r\ns=sipact\r\nc=IN {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={direction}\r\n",
            self.session_id, self.version, self.port
        ))
    }

    /// The direction attribute of an SDP body (`sendrecv` when absent).
    pub fn direction(sdp: &[u8]) -> &'static str {
        let text = String::from_utf8_lossy(sdp);
        for d in ["sendonly", "recvonly", "inactive", "sendrecv"] {
            if text.contains(&format!("a={d}")) {
                return d;
            }
        }
        "sendrecv"
    }
}

impl DescriptionHooks for SignallingSdp {
    fn offer(&mut self, hold: bool) -> Result<Body, u16> {
        Ok(self.body(if hold { "sendonly" } else { "sendrecv" }))
    }

    fn answer(&mut self, offer: &Body, hold: bool) -> Result<Body, u16> {
        let text = String::from_utf8_lossy(&offer.data);
        if !text.contains("m=audio") {
            return Err(488);
        }
        let dir = match (SignallingSdp::direction(&offer.data), hold) {
            ("sendonly", _) => "recvonly",
            ("inactive", _) => "inactive",
            ("recvonly", _) => "sendonly",
            (_, true) => "sendonly",
            _ => "sendrecv",
        };
        Ok(self.body(dir))
    }

    fn apply_answer(&mut self, answer: &Body) -> Result<(), u16> {
        if String::from_utf8_lossy(&answer.data).contains("m=audio") { Ok(()) } else { Err(488) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_offer_is_answered_recvonly() {
        let mut a = SignallingSdp::new("127.0.0.1".parse().unwrap(), 4000, 1);
        let mut b = SignallingSdp::new("127.0.0.1".parse().unwrap(), 4002, 2);
        let offer = a.offer(true).unwrap();
        assert_eq!(SignallingSdp::direction(&offer.data), "sendonly");
        let answer = b.answer(&offer, false).unwrap();
        assert_eq!(SignallingSdp::direction(&answer.data), "recvonly");
        assert!(a.apply_answer(&answer).is_ok());
        let again = a.offer(false).unwrap();
        assert!(String::from_utf8_lossy(&again.data).contains("o=sipact 1 2 IN IP4 127.0.0.1"));
    }
}
