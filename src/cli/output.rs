//! Standard output (never panics on a closed pipe) and the JSON lines of
//! `--events json`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use sipact::actors::{Session, SessionEvent};

/// Writes `s` to standard output as is; errors (a closed pipe) are ignored.
pub fn write_out(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// Writes one line to standard output.
pub fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Writes one line to standard error.
pub fn note(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{s}");
}

/// RFC 3339 UTC time with milliseconds: `2024-05-01T12:00:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, (rem / 60) % 60, rem % 60, d.subsec_millis())
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The name of an event (see [`SessionEvent::name`]).
pub fn event_name(e: &SessionEvent) -> &'static str {
    e.name()
}

/// The call-id of a session.
pub fn call_id(s: &Session) -> String {
    s.request().and_then(|r| r.headers.call_id()).unwrap_or("").to_owned()
}

/// The direction attribute of an SDP body (`sendrecv` when absent).
pub fn sdp_direction(sdp: &[u8]) -> &'static str {
    sipact::actors::sdp::SignallingSdp::direction(sdp)
}

/// The transport profile of the first audio stream of an SDP body
/// (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`...).
pub fn sdp_profile(sdp: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(sdp).ok()?;
    let m = text.lines().find_map(|l| l.strip_prefix("m=audio "))?;
    m.split_ascii_whitespace().nth(1).map(str::to_owned)
}

/// The common fields of a line.
fn base(event: &str, session: Option<&Session>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("timestamp".into(), json!(rfc3339(SystemTime::now())));
    if let Some(s) = session {
        m.insert("session".into(), json!(s.id()));
        m.insert("call_id".into(), json!(call_id(s)));
        let dir = match s.direction() {
            sipact::actors::proto::Direction::Outbound => "outbound",
            sipact::actors::proto::Direction::Inbound => "inbound",
        };
        m.insert("direction".into(), json!(dir));
    }
    m.insert("event".into(), json!(event));
    m
}

/// The first line of a session: `incoming` (with the caller) or `calling`
/// (with the target).
pub fn session_start_json(s: &Session) -> Value {
    let inbound = s.direction() == sipact::actors::proto::Direction::Inbound;
    let mut m = base(if inbound { "incoming" } else { "calling" }, Some(s));
    if let Some(a) = s.remote_identity() {
        m.insert(if inbound { "from" } else { "to" }.into(), json!(a.uri.to_string()));
    }
    Value::Object(m)
}

/// One session event as a JSON object.
pub fn event_json(s: &Session, e: &SessionEvent) -> Value {
    let mut m = base(event_name(e), Some(s));
    match e {
        SessionEvent::Progress { response } | SessionEvent::Accepted { response, .. } => {
            m.insert("status".into(), json!(response.status));
            m.insert("reason".into(), json!(response.reason.to_string()));
            if let SessionEvent::Accepted { .. } = e
                && let Some(local) = s.description_handler().local_description()
            {
                m.insert("media_direction".into(), json!(sdp_direction(&local.data)));
                if let Some(profile) = sdp_profile(&local.data) {
                    m.insert("media_profile".into(), json!(profile));
                }
            }
        }
        SessionEvent::Rejected { response, cause } => {
            m.insert("status".into(), json!(response.status));
            m.insert("reason".into(), json!(response.reason.to_string()));
            m.insert("cause".into(), json!(cause.to_string()));
        }
        SessionEvent::Failed { response, cause } => {
            if let Some(r) = response {
                m.insert("status".into(), json!(r.status));
                m.insert("reason".into(), json!(r.reason.to_string()));
            }
            m.insert("cause".into(), json!(cause.to_string()));
        }
        SessionEvent::Terminated { cause } => {
            m.insert("cause".into(), json!(cause.to_string()));
            if let Some(st) = s.media_stats() {
                m.insert(
                    "media".into(),
                    json!({
                        "packets_sent": st.packets_sent,
                        "bytes_sent": st.bytes_sent,
                        "packets_received": st.packets_received,
                        "bytes_received": st.bytes_received,
                        "rtcp_sent": st.rtcp_sent,
                        "rtcp_received": st.rtcp_received,
                    }),
                );
            }
        }
        SessionEvent::Dtmf { tone, duration, outgoing, .. } => {
            m.insert("tone".into(), json!(tone.to_string()));
            m.insert("duration".into(), json!(duration));
            m.insert("outgoing".into(), json!(outgoing));
        }
        SessionEvent::ReferProgress { status, terminated } => {
            m.insert("status".into(), json!(status));
            m.insert("terminated".into(), json!(terminated));
        }
        SessionEvent::Refer { request } => {
            let refer_to = request.headers.iter().find_map(|h| match h {
                sipact::message::Header::ReferTo(a) => Some(a.uri.to_string()),
                _ => None,
            });
            if let Some(uri) = refer_to {
                m.insert("refer_to".into(), json!(uri));
            }
        }
        SessionEvent::HoldChanged { local_hold } => {
            m.insert("local_hold".into(), json!(local_hold));
        }
        SessionEvent::Reinvited { .. } => {
            let dh = s.description_handler();
            if let Some(remote) = dh.remote_description() {
                m.insert("remote_direction".into(), json!(sdp_direction(&remote.data)));
            }
            if let Some(local) = dh.local_description() {
                m.insert("media_direction".into(), json!(sdp_direction(&local.data)));
            }
        }
        SessionEvent::RenegotiationFailed { status } => {
            m.insert("status".into(), json!(status));
        }
        _ => {}
    }
    Value::Object(m)
}

/// A line of a registration event (no session).
pub fn registration_json(event: &str, fields: &[(&str, Value)]) -> Value {
    let mut m = base(event, None);
    for (k, v) in fields {
        m.insert((*k).into(), v.clone());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }
}
