//! `--ladder`: an ASCII ladder diagram of one call, from the messages the
//! wire tap saw. Our column is first, then each peer in the order it
//! appeared; times are relative to the first message.

use std::net::SocketAddr;
use std::time::SystemTime;

use sipact::message::SipMessage;

/// One message of a call.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When it was sent or received.
    pub at: SystemTime,
    /// Whether we sent it.
    pub outgoing: bool,
    /// The far end.
    pub peer: SocketAddr,
    /// Its transport (`UDP`, `TCP`...).
    pub transport: &'static str,
    /// Its label: `INVITE (SDP)`, `180 Ringing (INVITE)`.
    pub label: String,
}

/// The label of a message in a ladder: the method, or the status, reason
/// and CSeq method; `(SDP)` when it carries one.
pub fn label(msg: &SipMessage) -> String {
    let (mut s, headers, body) = match msg {
        SipMessage::Request(r) => (r.method.to_string(), &r.headers, &r.body),
        SipMessage::Response(r) => {
            let m = r.headers.cseq().map(|c| format!(" ({})", c.method)).unwrap_or_default();
            (format!("{} {}{m}", r.status, r.reason), &r.headers, &r.body)
        }
    };
    if !body.is_empty() {
        match headers.content_type() {
            Some(ct) if ct.is("application", "sdp") => s.push_str(" SDP"),
            Some(ct) if ct.is("application", "dtmf-relay") => {
                let text = String::from_utf8_lossy(body);
                if let Some(sig) = text.lines().find_map(|l| l.trim().strip_prefix("Signal=")) {
                    s.push_str(&format!(" dtmf {}", sig.trim()));
                }
            }
            _ => {}
        }
    }
    s
}

fn center(line: &mut [u8], mid: usize, text: &str) {
    let t = text.as_bytes();
    let start = mid.saturating_sub(t.len() / 2);
    for (i, b) in t.iter().enumerate() {
        if let Some(c) = line.get_mut(start + i) {
            *c = *b;
        }
    }
}

/// Renders the ladder of one call.
pub fn render(call_id: &str, local: SocketAddr, entries: &[Entry]) -> String {
    let mut columns: Vec<String> = vec![format!("sipact {local}")];
    let mut peers: Vec<(SocketAddr, &'static str)> = Vec::new();
    for e in entries {
        if !peers.iter().any(|(p, _)| *p == e.peer) {
            peers.push((e.peer, e.transport));
            columns.push(format!("{} {}", e.transport, e.peer));
        }
    }
    let widest = entries.iter().map(|e| e.label.len()).chain(columns.iter().map(String::len)).max().unwrap_or(0);
    let width = (widest + 8).max(30);
    let margin = 12 + width / 2;
    let total = margin + width * (columns.len() - 1) + width / 2;
    let x = |i: usize| margin + i * width;
    let blank = || {
        let mut l = vec![b' '; total];
        for i in 0..columns.len() {
            l[x(i)] = b'|';
        }
        l
    };
    let mut out = format!("call {call_id}\n");
    let mut head = vec![b' '; total];
    for (i, c) in columns.iter().enumerate() {
        center(&mut head, x(i), c);
    }
    let push = |out: &mut String, l: &[u8]| {
        out.push_str(String::from_utf8_lossy(l).trim_end());
        out.push('\n');
    };
    push(&mut out, &head);
    push(&mut out, &blank());
    let t0 = entries.first().map(|e| e.at).unwrap_or(SystemTime::UNIX_EPOCH);
    for e in entries {
        let p = peers.iter().position(|(a, _)| *a == e.peer).map(|i| i + 1).unwrap_or(1);
        let (lo, hi) = (x(0), x(p));
        let mut l = blank();
        for c in &mut l[lo + 1..hi] {
            *c = b'-';
        }
        if e.outgoing {
            l[hi - 1] = b'>';
        } else {
            l[lo + 1] = b'<';
        }
        let label = format!(" {} ", e.label);
        center(&mut l, (lo + hi) / 2, &label);
        let dt = e.at.duration_since(t0).unwrap_or_default().as_secs_f64();
        let stamp = format!("{dt:>10.3}s");
        l[..stamp.len()].copy_from_slice(stamp.as_bytes());
        push(&mut out, &l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn two_columns_with_arrows_both_ways() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let peer: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let entries = vec![
            Entry { at: t, outgoing: true, peer, transport: "UDP", label: "INVITE SDP".into() },
            Entry {
                at: t + Duration::from_millis(5),
                outgoing: false,
                peer,
                transport: "UDP",
                label: "200 OK (INVITE) SDP".into(),
            },
        ];
        let s = render("abc", "127.0.0.1:5060".parse().unwrap(), &entries);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "call abc");
        assert!(lines[1].contains("sipact 127.0.0.1:5060") && lines[1].contains("UDP 127.0.0.1:5070"));
        assert!(lines[3].starts_with("     0.000s"));
        assert!(lines[3].contains("- INVITE SDP -") && lines[3].ends_with("->|"));
        assert!(lines[4].contains("|<-") && lines[4].contains("200 OK (INVITE) SDP"));
        assert!(lines[4].starts_with("     0.005s"));
    }
}
