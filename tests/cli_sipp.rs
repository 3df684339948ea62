//! Interop with SIPp (Debian `sip-tester`, installed by
//! scripts/install-test-deps.sh when missing; the tests fail, never skip,
//! without it). Everything on 127.0.0.1, bounded loads, deadlines on every
//! process.

mod support;

use std::time::Duration;

use support::*;

const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);

/// `sipp -sn uac` against `sipact listen`: `calls` calls at 50 calls/s,
/// at most 50 at a time.
fn uac_load(name: &str, transport: &str, calls: u32, extra: &[&str]) {
    require("sipp");
    let dir = scratch(name);
    let port = free_port();
    let max = calls.to_string();
    let mut listener = listen(port, &["--transport", transport, "--media", "none", "--max-calls", &max]);
    let mut args = sipp_base(free_port());
    args.splice(0..0, ["-sn".into(), "uac".into(), format!("127.0.0.1:{port}")]);
    let t = if transport == "tcp" { "t1" } else { "u1" };
    args.extend(["-t", t, "-m", &max, "-r", "50", "-l", "50"].iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = sipp(&dir, &args, LOAD_TIMEOUT);
    eprintln!("{name}: SIPp {calls} calls over {transport}: {run:?}");
    assert_eq!(run.code, 0, "SIPp failed: {}", run.log);
    assert_eq!(run.successful, u64::from(calls), "{}", run.log);
    assert_eq!(run.failed, 0, "{}", run.log);
    // Every call is over: listen exits by itself. Under loss a session
    // whose ACK was lost ends at the BYE, or at Timer H (64*T1 = 32 s).
    assert_eq!(listener.wait(Duration::from_secs(60)), 0, "{}", listener.stderr());
}

#[test]
fn sipp_uac_500_calls_over_udp() {
    uac_load("uac-udp", "udp", 500, &[]);
}

#[test]
fn sipp_uac_500_calls_over_tcp() {
    uac_load("uac-tcp", "tcp", 500, &[]);
}

#[test]
fn sipp_uac_200_calls_with_10_percent_loss() {
    uac_load("uac-lost", "udp", 200, &["-lost", "10"]);
}

#[test]
fn sipact_call_against_sipp_uas() {
    require("sipp");
    let dir = scratch("uas");
    let port = free_port();
    let mut args = sipp_base(port);
    args.splice(0..0, ["-sn".into(), "uas".into()]);
    args.extend(["-m", "1"].iter().map(|s| s.to_string()));
    let peer = sipp_spawn(&dir, &args);
    std::thread::sleep(Duration::from_millis(300));
    let target = format!("sip:service@127.0.0.1:{port}");
    // SIPp answers with plain RTP/AVP SDP.
    let mut call = Proc::sipact(&["call", &target, "--hangup-after", "0.3", "--events", "json", "--media", "rtp"]);
    assert_eq!(call.wait(SHORT_TIMEOUT), 0, "{}", call.stderr());
    let ev = names(&call.json_lines());
    assert_eq!(ev.first().map(String::as_str), Some("calling"));
    assert!(ev.contains(&"accepted".to_owned()), "{ev:?}");
    assert_eq!(ev.last().map(String::as_str), Some("terminated"));
    let run = sipp_finish(&dir, peer, SHORT_TIMEOUT);
    assert_eq!(run.code, 0, "{}", run.log);
    assert_eq!((run.successful, run.failed), (1, 0), "{}", run.log);
}

/// Runs a project-written UAC scenario against `sipact listen` and returns
/// the listener's events by call.
fn scenario_against_listen(
    name: &str,
    file: &str,
    calls: u32,
    listen_args: &[&str],
) -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
    require("sipp");
    let dir = scratch(name);
    let port = free_port();
    let max = calls.to_string();
    // The scenarios offer plain RTP/AVP SDP.
    let mut a = vec!["--events", "json", "--max-calls", &max, "--media", "rtp"];
    a.extend_from_slice(listen_args);
    let mut listener = listen(port, &a);
    let mut args = sipp_base(free_port());
    args.splice(0..0, ["-sf".into(), scenario(file), format!("127.0.0.1:{port}")]);
    args.extend(["-m", &max, "-r", "10"].iter().map(|s| s.to_string()));
    let run = sipp(&dir, &args, SHORT_TIMEOUT);
    eprintln!("{name}: {run:?}");
    assert_eq!(run.code, 0, "SIPp failed: {}\nlisten: {}", run.log, listener.stderr());
    assert_eq!((run.successful, run.failed), (u64::from(calls), 0), "{}", run.log);
    assert_eq!(listener.wait(Duration::from_secs(20)), 0, "{}", listener.stderr());
    let calls_seen = by_call(&listener.json_lines());
    assert_eq!(calls_seen.len(), calls as usize, "{calls_seen:?}");
    calls_seen
}

#[test]
fn sipp_invite_with_require_100rel_is_prackd() {
    let calls = scenario_against_listen("100rel", "uac_100rel.xml", 3, &["--answer", "ring:0.3"]);
    for (id, ev) in calls {
        assert_eq!(names(&ev), ["incoming", "progress", "accepted", "bye", "terminated"], "{id}");
        assert_eq!(ev[1]["status"], 180);
        assert_eq!(ev[2]["status"], 200);
        assert_eq!(ev[4]["cause"], "Bye");
    }
}

#[test]
fn sipp_reinvite_hold_then_unhold() {
    let calls = scenario_against_listen("hold", "uac_hold.xml", 2, &[]);
    for (id, ev) in calls {
        assert_eq!(names(&ev), ["incoming", "accepted", "reinvited", "reinvited", "bye", "terminated"], "{id}");
        assert_eq!(ev[2]["remote_direction"], "sendonly", "{ev:?}");
        assert_eq!(ev[2]["media_direction"], "recvonly", "{ev:?}");
        assert_eq!(ev[3]["remote_direction"], "sendrecv", "{ev:?}");
        assert_eq!(ev[3]["media_direction"], "sendrecv", "{ev:?}");
    }
}

#[test]
fn sipp_info_dtmf_shows_each_tone() {
    let calls = scenario_against_listen("dtmf", "uac_info_dtmf.xml", 2, &[]);
    for (id, ev) in calls {
        let tones: Vec<&str> =
            ev.iter().filter(|e| e["event"] == "dtmf").map(|e| e["tone"].as_str().unwrap_or("")).collect();
        assert_eq!(tones, ["1", "5", "#"], "{id}: {ev:?}");
        assert!(ev.iter().filter(|e| e["event"] == "dtmf").all(|e| e["outgoing"] == false));
        assert_eq!(ev.last().unwrap()["cause"], "Bye");
    }
}

#[test]
fn sipp_cancel_before_the_answer() {
    let calls = scenario_against_listen("cancel", "uac_cancel.xml", 3, &["--answer", "ring:20"]);
    for (id, ev) in calls {
        let n = names(&ev);
        assert_eq!(n.first().map(String::as_str), Some("incoming"), "{id}");
        assert!(n.contains(&"cancel".to_owned()), "{id}: {n:?}");
        assert!(!n.contains(&"accepted".to_owned()), "{id}: {n:?}");
        let last = ev.last().unwrap();
        assert_eq!(last["event"], "terminated");
        assert_eq!(last["cause"], "Canceled");
    }
}

#[test]
fn sipp_bye_from_the_peer() {
    let calls = scenario_against_listen("bye", "uac_bye.xml", 3, &[]);
    for (id, ev) in calls {
        assert_eq!(names(&ev), ["incoming", "accepted", "bye", "terminated"], "{id}");
        assert_eq!(ev[3]["cause"], "Bye");
    }
}
