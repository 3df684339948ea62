//! `sipact listen`, `call` and `register` as processes: help, exit codes,
//! `--events json` line by line, `--ladder`, `--pcap` (decoded by tshark),
//! `--config` and `SIPACT_*` variables. All on 127.0.0.1.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(40);

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut p = Proc::spawn(bin(), args, None, env);
    let code = p.wait(T);
    (code, p.stdout().join("\n"), p.stderr())
}

#[test]
fn help_documents_the_commands_and_the_exit_codes() {
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    for w in ["parse", "listen", "call", "register", "Exit status", "3    target or registrar unreachable", "SIPACT_"] {
        assert!(out.contains(w), "--help lacks {w:?}:\n{out}");
    }
    let (code, out, _) = run(&["listen", "--help"], &[]);
    assert_eq!(code, 0);
    for w in
        ["--answer", "ring:SECS", "--max-calls", "--echo", "--rel100", "--events", "--ladder", "--pcap", "--config"]
    {
        assert!(out.contains(w), "listen --help lacks {w:?}:\n{out}");
    }
    let (code, out, _) = run(&["call", "--help"], &[]);
    assert_eq!(code, 0);
    for w in ["--dtmf", "--hold-after", "--unhold-after", "--refer", "--hangup-after", "--from", "--user", "--password"]
    {
        assert!(out.contains(w), "call --help lacks {w:?}:\n{out}");
    }
    let (code, out, _) = run(&["register", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("--expires"), "{out}");
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let cases: &[&[&str]] = &[
        &["call"],
        &["frobnicate"],
        &["listen", "--answer", "sometimes"],
        &["listen", "--transport", "pigeon"],
        &["listen", "--max-calls", "0"],
        &["call", "not a uri"],
        &["call", "sip:bob@127.0.0.1:9", "--unhold-after", "1"],
        &["call", "sip:bob@127.0.0.1:9", "--hold-after", "2", "--unhold-after", "1"],
        &["call", "sip:bob@127.0.0.1:9", "--dtmf", "12x"],
        &["call", "sip:bob@127.0.0.1:9", "--user", "alice"],
        &["call", "sip:bob@127.0.0.1:9", "--config", "/nonexistent/sipact.toml"],
        &["register", "sip:127.0.0.1:9"],
    ];
    for args in cases {
        let (code, _, err) = run(args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?}: no message");
    }
    // A bad value in the environment is a bad argument too.
    let (code, _, err) = run(&["call", "sip:bob@127.0.0.1:9"], &[("SIPACT_T1_MS", "soon")]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn unreachable_targets_exit_3() {
    // TCP: connection refused.
    let port = free_port();
    let target = format!("sip:bob@127.0.0.1:{port};transport=tcp");
    let (code, _, err) = run(&["call", &target], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("ConnectionError"), "{err}");
    // UDP: nobody answers; Timer B (64*T1) with T1 = 20 ms from the environment.
    let target = format!("sip:bob@127.0.0.1:{port}");
    let (code, _, err) = run(&["call", &target], &[("SIPACT_T1_MS", "20")]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("RequestTimeout"), "{err}");
    // --timeout cancels an unanswered call.
    let l = free_port();
    let mut listener = listen(l, &["--answer", "ring:30", "--max-calls", "1"]);
    let target = format!("sip:bob@127.0.0.1:{l}");
    let (code, _, err) = run(&["call", &target, "--timeout", "0.5"], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no answer"), "{err}");
    assert_eq!(listener.wait(T), 0);
}

#[test]
fn a_rejected_call_exits_5_with_its_cause() {
    let port = free_port();
    let mut listener = listen(port, &["--answer", "reject:486", "--max-calls", "1"]);
    let target = format!("sip:bob@127.0.0.1:{port}");
    let (code, _, err) = run(&["call", &target], &[]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("486") && err.contains("cause Busy"), "{err}");
    assert_eq!(listener.wait(T), 0, "{}", listener.stderr());
}

/// Asserts the fields every event line has.
fn common_fields(lines: &[serde_json::Value], call_id: &str) {
    for l in lines {
        assert_eq!(l["call_id"], call_id, "{l}");
        assert!(l["session"].is_u64(), "{l}");
        let ts = l["timestamp"].as_str().unwrap_or("");
        assert!(ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{l}");
    }
}

#[test]
fn listen_and_call_report_every_event_as_json_lines() {
    let port = free_port();
    let mut listener = listen(port, &["--answer", "ring:0.2", "--events", "json", "--max-calls", "1"]);
    let target = format!("sip:bob@127.0.0.1:{port}");
    let mut call = Proc::sipact(&[
        "call",
        &target,
        "--events",
        "json",
        "--from",
        "sip:alice@127.0.0.1",
        "--dtmf",
        "12",
        "--hold-after",
        "1.3",
        "--unhold-after",
        "1.6",
        "--hangup-after",
        "2.0",
    ]);
    assert_eq!(call.wait(T), 0, "{}", call.stderr());
    assert_eq!(listener.wait(T), 0, "{}", listener.stderr());

    let c = call.json_lines();
    let call_id = c[0]["call_id"].as_str().unwrap().to_owned();
    common_fields(&c, &call_id);
    assert_eq!(
        names(&c),
        ["calling", "progress", "accepted", "dtmf", "dtmf", "hold-changed", "hold-changed", "terminated"],
        "{c:#?}"
    );
    assert_eq!(c[0]["direction"], "outbound");
    assert_eq!(c[0]["to"], target);
    assert_eq!(c[1]["status"], 180);
    assert_eq!(c[2]["status"], 200);
    assert_eq!((c[3]["tone"].as_str(), c[3]["outgoing"].as_bool()), (Some("1"), Some(true)));
    assert_eq!(c[4]["tone"], "2");
    assert_eq!(c[5]["local_hold"], true);
    assert_eq!(c[6]["local_hold"], false);
    assert_eq!(c[7]["cause"], "Bye");

    let l = listener.json_lines();
    common_fields(&l, &call_id);
    assert_eq!(
        names(&l),
        ["incoming", "progress", "accepted", "dtmf", "dtmf", "reinvited", "reinvited", "bye", "terminated"],
        "{l:#?}"
    );
    assert_eq!(l[0]["direction"], "inbound");
    assert!(l[0]["from"].as_str().unwrap().starts_with("sip:alice@127.0.0.1"), "{}", l[0]);
    assert_eq!(l[1]["status"], 180);
    assert_eq!((l[3]["tone"].as_str(), l[3]["outgoing"].as_bool()), (Some("1"), Some(false)));
    assert_eq!(l[4]["tone"], "2");
    assert_eq!(
        (l[5]["remote_direction"].as_str(), l[5]["media_direction"].as_str()),
        (Some("sendonly"), Some("recvonly"))
    );
    assert_eq!(
        (l[6]["remote_direction"].as_str(), l[6]["media_direction"].as_str()),
        (Some("sendrecv"), Some("sendrecv"))
    );
    assert_eq!(l[8]["cause"], "Bye");
}

/// `call` against `listen --echo` with `media` on both sides: the call's
/// events name the media profile and, at the end, the packets both ways.
fn audio_between_call_and_listen(media: &str, profile: &str) {
    let port = free_port();
    let mut listener = listen(port, &["--media", media, "--echo", "--events", "json", "--max-calls", "1"]);
    let target = format!("sip:echo@127.0.0.1:{port}");
    let mut call = Proc::sipact(&["call", &target, "--media", media, "--events", "json", "--hangup-after", "1.5"]);
    assert_eq!(call.wait(T), 0, "{}", call.stderr());
    assert_eq!(listener.wait(T), 0, "{}", listener.stderr());
    let c = call.json_lines();
    let accepted = c.iter().find(|l| l["event"] == "accepted").expect("accepted");
    assert_eq!(accepted["media_profile"], profile, "{accepted}");
    let end = c.last().expect("events");
    assert_eq!(end["event"], "terminated");
    let m = &end["media"];
    let (sent, received) = (m["packets_sent"].as_u64().unwrap(), m["packets_received"].as_u64().unwrap());
    // 1.5 s of 20 ms frames: about 75 sent; the echo comes back.
    assert!(sent >= 50 && received >= 40, "{end}");
    assert!(m["bytes_received"].as_u64().unwrap() >= received * 172, "{end}");
    let l = listener.json_lines();
    let end = l.last().expect("events");
    assert_eq!((end["event"].as_str(), end["cause"].as_str()), (Some("terminated"), Some("Bye")), "{end}");
    assert!(end["media"]["packets_received"].as_u64().unwrap() >= 40, "{end}");
}

#[test]
fn call_and_listen_exchange_audio_over_webrtc() {
    audio_between_call_and_listen("webrtc", "UDP/TLS/RTP/SAVPF");
}

#[test]
fn call_and_listen_exchange_audio_over_plain_rtp() {
    audio_between_call_and_listen("rtp", "RTP/AVP");
}

#[test]
fn ladder_shows_the_call() {
    let port = free_port();
    let mut listener = listen(port, &["--max-calls", "1", "--ladder"]);
    let target = format!("sip:bob@127.0.0.1:{port}");
    let mut call = Proc::sipact(&["call", &target, "--hangup-after", "0.2", "--ladder", "--events", "json"]);
    assert_eq!(call.wait(T), 0, "{}", call.stderr());
    assert_eq!(listener.wait(T), 0, "{}", listener.stderr());
    let out = call.stdout();
    let ladder: Vec<&String> = out.iter().filter(|l| !l.starts_with('{')).collect();
    let text = ladder.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n");
    assert!(ladder[0].starts_with("call "), "{text}");
    assert!(ladder[1].contains(&format!("UDP 127.0.0.1:{port}")), "{text}");
    let arrows: Vec<&str> = ladder[3..].iter().map(|s| s.as_str()).collect();
    let find = |label: &str, out: bool| {
        arrows.iter().any(|a| a.contains(label) && if out { a.ends_with(">|") } else { a.contains("|<") })
    };
    assert!(find("INVITE SDP", true), "{text}");
    assert!(find("200 OK (INVITE) SDP", false), "{text}");
    assert!(find("ACK", true), "{text}");
    assert!(find("BYE", true), "{text}");
    assert!(find("200 OK (BYE)", false), "{text}");
    assert!(call.json_lines().len() >= 3);
    let theirs = listener.stdout().join("\n");
    assert!(theirs.contains("INVITE SDP") && theirs.contains("200 OK (BYE)"), "{theirs}");
}

fn tshark_sip(file: &std::path::Path) -> Vec<String> {
    require("tshark");
    let out = Command::new("tshark")
        .args([
            "-r",
            &file.display().to_string(),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_owned()).collect()
}

fn pcap_call(transport: &str) {
    let dir = scratch(&format!("pcap-{transport}"));
    let port = free_port();
    let theirs = dir.join("listen.pcap");
    let ours = dir.join("call.pcap");
    let mut listener = listen(
        port,
        &["--transport", transport, "--max-calls", "1", "--pcap", theirs.to_str().unwrap(), "--media", "none"],
    );
    let target = format!("sip:bob@127.0.0.1:{port};transport={transport}");
    let mut call = Proc::sipact(&[
        "call",
        &target,
        "--dtmf",
        "5",
        "--hangup-after",
        "0.3",
        "--pcap",
        ours.to_str().unwrap(),
        "--media",
        "none",
    ]);
    assert_eq!(call.wait(T), 0, "{}", call.stderr());
    assert_eq!(listener.wait(T), 0, "{}", listener.stderr());
    for f in [&ours, &theirs] {
        let rows = tshark_sip(f);
        for want in ["INVITE", "ACK", "INFO", "BYE", "100", "200"] {
            assert!(
                rows.iter().any(|r| r.split_whitespace().any(|w| w == want)),
                "{}: no {want}: {rows:?}",
                f.display()
            );
        }
        assert!(rows.len() >= 8, "{}: {rows:?}", f.display());
    }
    // The transport is right.
    let proto = Command::new("tshark")
        .args(["-r", &ours.display().to_string(), "-Y", "sip", "-T", "fields", "-e", "frame.protocols"])
        .output()
        .expect("tshark");
    let p = String::from_utf8_lossy(&proto.stdout);
    let want = if transport == "udp" { ":udp:sip" } else { ":tcp:sip" };
    assert!(p.lines().all(|l| l.contains(want)), "{p}");
}

#[test]
fn pcap_over_udp_is_decoded_by_tshark() {
    pcap_call("udp");
}

#[test]
fn pcap_over_tcp_is_decoded_by_tshark() {
    pcap_call("tcp");
}

#[test]
fn config_file_and_environment_set_options() {
    let dir = scratch("config");
    let file = dir.join("listen.toml");
    std::fs::write(&file, "answer = \"reject:603\"\nmax_calls = 1\nuser = \"bob\"\nmedia = \"none\"\n").unwrap();
    let port = free_port();
    let mut listener = listen(port, &["--config", file.to_str().unwrap()]);
    assert!(listener.stderr().contains("sip:bob@"), "{}", listener.stderr());
    let target = format!("sip:bob@127.0.0.1:{port}");
    let env = [("SIPACT_EVENTS", "json"), ("SIPACT_USER", "carol"), ("SIPACT_MEDIA", "none")];
    let (code, out, err) = run(&["call", &target], &env);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("603"), "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(names(&lines).last().map(String::as_str), Some("terminated"));
    assert!(lines.iter().any(|l| l["status"] == 603), "{out}");
    assert_eq!(listener.wait(T), 0);
    // A command-line option wins over the file.
    let port = free_port();
    let mut listener = listen(port, &["--config", file.to_str().unwrap(), "--answer", "auto"]);
    let target = format!("sip:bob@127.0.0.1:{port}");
    let (code, _, err) = run(&["call", &target, "--hangup-after", "0.1", "--media", "none"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(listener.wait(T), 0);
}

fn registrar(dir: &std::path::Path, port: u16) -> Proc {
    let mut args = sipp_base(port);
    args.splice(0..0, ["-sf".into(), scenario("uas_registrar.xml")]);
    args.extend(["-m", "1"].iter().map(|s| s.to_string()));
    let p = sipp_spawn(dir, &args);
    std::thread::sleep(Duration::from_millis(300));
    p
}

#[test]
fn register_stays_registered_until_interrupted_then_unregisters() {
    let dir = scratch("register");
    let port = free_port();
    let peer = registrar(&dir, port);
    let uri = format!("sip:127.0.0.1:{port}");
    let reg = Proc::sipact(&[
        "register",
        &uri,
        "--user",
        "alice",
        "--password",
        "secret",
        "--expires",
        "60",
        "--events",
        "json",
    ]);
    reg.wait_stderr("registered with", T);
    std::thread::sleep(Duration::from_millis(300));
    reg.terminate();
    let mut reg = reg;
    assert_eq!(reg.wait(T), 0, "{}", reg.stderr());
    let lines = reg.json_lines();
    assert_eq!(names(&lines), ["registered", "unregistered"], "{lines:?}");
    assert_eq!(lines[0]["expires"], 60);
    let run = sipp_finish(&dir, peer, T);
    assert_eq!(run.code, 0, "{}", run.log);
}

#[test]
fn register_with_a_wrong_password_exits_4() {
    let dir = scratch("register-403");
    let port = free_port();
    let peer = registrar(&dir, port);
    let uri = format!("sip:127.0.0.1:{port}");
    let (code, _, err) = run(&["register", &uri, "--user", "alice", "--password", "wrong"], &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("403"), "{err}");
    let run = sipp_finish(&dir, peer, T);
    assert_eq!(run.code, 0, "{}", run.log);
}
