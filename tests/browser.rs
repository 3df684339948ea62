//! A browser calls sipact: SIP.js 0.21 (npm `sip.js`) in headless Chromium
//! with fake media devices calls `sipact listen --transport ws --media
//! webrtc` over `ws://127.0.0.1`, is answered with WebRTC media, checks
//! through `RTCPeerConnection.getStats()` that audio packets arrived from
//! sipact, and hangs up.
//!
//! `scripts/install-browser-deps.sh` installs Chromium (Debian) and the
//! page's npm packages (tests/browser: sip.js, esbuild) when missing; the
//! test fails, never skips, without them. The page (tests/browser/app.js)
//! is bundled with esbuild into the scratch folder on every run, served from
//! a small HTTP server on 127.0.0.1 in a thread of the test, and POSTs its
//! result to `/result`.
//!
//! Everything stays on 127.0.0.1. The test runs itself again inside a new
//! network namespace that has only a loopback interface (`unshare --net`,
//! root), so that nothing of Chromium's (its route probes, multicast
//! joins, host candidates on other interfaces) can reach another
//! interface; where no namespace can be made it runs on the host's network
//! and says so. Either way Chromium's host resolver maps every name to
//! nothing, its background networking is off, and the page removes every
//! ICE candidate that is not 127.0.0.1 from its offer.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Longest the page may take to POST its result.
const PAGE_TIMEOUT: Duration = Duration::from_secs(90);
/// Inbound audio packets the page waits for.
const MIN_PACKETS: u64 = 50;

fn page_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Runs `scripts/install-browser-deps.sh` (Chromium, and sip.js and esbuild
/// under tests/browser/node_modules, when missing).
fn install_browser_deps() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-browser-deps.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "the browser test needs Chromium (Debian chromium) and the npm packages of tests/browser, \
         and {} failed ({}): {}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Bundles tests/browser/app.js (with sip.js) into one ESM file in `dir`.
fn bundle(dir: &Path) -> PathBuf {
    let page = page_dir();
    let outfile = dir.join("app.bundle.js");
    let out = Command::new(page.join("node_modules/.bin/esbuild"))
        .current_dir(&page)
        .arg("app.js")
        .args(["--bundle", "--format=esm", "--target=es2020", "--log-level=warning"])
        .arg(format!("--outfile={}", outfile.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run esbuild");
    assert!(out.status.success(), "esbuild failed: {}", String::from_utf8_lossy(&out.stderr));
    outfile
}

/// A static HTTP server on 127.0.0.1 (a thread per connection) for the
/// page and its bundle; the body of the first `POST /result` goes to a
/// channel.
struct PageServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    results: mpsc::Receiver<String>,
}

impl PageServer {
    fn start(files: Vec<(&'static str, &'static str, Vec<u8>)>) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, results) = mpsc::channel();
        let files = Arc::new(files);
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let files = files.clone();
                        let tx = tx.clone();
                        std::thread::spawn(move || {
                            // A connection Chromium leaves open ends with
                            // a reset when it is killed: not worth a line.
                            match serve_http(conn, &files, &tx) {
                                Err(e)
                                    if !matches!(
                                        e.kind(),
                                        std::io::ErrorKind::ConnectionReset
                                            | std::io::ErrorKind::UnexpectedEof
                                            | std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) =>
                                {
                                    eprintln!("page server: {e}")
                                }
                                _ => {}
                            }
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => {
                        eprintln!("page server: accept: {e}");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        });
        PageServer { port, stop, thread: Some(thread), results }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers the requests of one connection (keep-alive is honoured until the
/// browser closes it or stays idle for 10 s).
fn serve_http(
    conn: TcpStream,
    files: &[(&'static str, &'static str, Vec<u8>)],
    results: &mpsc::Sender<String>,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; content_length.min(16 * 1024 * 1024)];
        reader.read_exact(&mut body)?;
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("/");
        let path = path.split('?').next().unwrap_or("/");
        let (status, ctype, content): (&str, &str, &[u8]) = match (method, path) {
            ("POST", "/result") => {
                let _ = results.send(String::from_utf8_lossy(&body).into_owned());
                ("200 OK", "text/plain", b"ok")
            }
            ("GET", p) => {
                let p = if p == "/" { "/index.html" } else { p };
                match files.iter().find(|(name, _, _)| p.strip_prefix('/') == Some(name)) {
                    Some((_, ctype, data)) => ("200 OK", ctype, data.as_slice()),
                    None => ("404 Not Found", "text/plain", b"not found"),
                }
            }
            _ => ("405 Method Not Allowed", "text/plain", b"no"),
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n",
            content.len()
        )?;
        out.write_all(content)?;
        out.flush()?;
    }
}

/// Headless Chromium in its own process group, killed with the whole
/// group (by its id) when dropped.
struct Chromium {
    child: Child,
    log: PathBuf,
}

impl Chromium {
    fn launch(dir: &Path, url: &str) -> Chromium {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).expect("profile dir");
        let log = dir.join("chromium.log");
        let logf = std::fs::File::create(&log).expect("chromium log");
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                &format!("--user-data-dir={}", profile.display()),
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-pings",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--disable-domain-reliability",
                "--disable-client-side-phishing-detection",
                "--disable-features=MediaRouter,DialMediaRouteProvider,OptimizationHints,Translate,WebRtcHideLocalIpsWithMdns",
                "--metrics-recording-only",
                "--enable-logging=stderr",
                "--v=0",
                url,
            ])
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("log"))
            .stderr(logf)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        Chromium { child, log }
    }

    /// Waits for the page's result, at most `timeout`, and no longer than
    /// Chromium runs.
    fn wait_for(&mut self, results: &mpsc::Receiver<String>, timeout: Duration) -> Result<String, String> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            match results.recv_timeout(Duration::from_millis(250)) {
                Ok(body) => return Ok(body),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(e) => return Err(format!("the page server stopped: {e}")),
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // A last chance for a result posted just before the exit.
                return results
                    .recv_timeout(Duration::from_millis(500))
                    .map_err(|_| format!("chromium exited ({status}) before the page posted its result"));
            }
        }
        Err(format!("the page posted no result within {timeout:?}"))
    }

    /// Kills Chromium's process group (its renderer, GPU and utility
    /// processes with it) and reaps the browser process.
    fn kill(&mut self) {
        let _ =
            Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of its log (for failure messages).
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The page's log lines at level warn or error (SIP.js and the page's
/// own), and those that say something failed: what Chromium or SIP.js
/// complained about.
fn complaints(result: &Value) -> Vec<String> {
    let Some(lines) = result["logs"].as_array() else { return Vec::new() };
    lines
        .iter()
        .filter_map(Value::as_str)
        .filter(|l| {
            // "<ms>ms <level> <category> <text>"
            let mut f = l.splitn(3, ' ');
            let level = f.nth(1).unwrap_or("");
            matches!(level, "warn" | "error") || f.next().is_some_and(|rest| rest.contains("failed"))
        })
        .map(|l| l.chars().take(600).collect())
        .collect()
}

/// The test's name, to run it again inside a network namespace.
const TEST_NAME: &str = "sipjs_in_chromium_calls_sipact_over_websocket_with_webrtc_audio";
/// Set in the copy of the test that runs inside the network namespace.
const IN_NETNS: &str = "SIPACT_BROWSER_TEST_IN_NETNS";
/// Longest the copy inside the namespace may run.
const NETNS_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn sipjs_in_chromium_calls_sipact_over_websocket_with_webrtc_audio() {
    if std::env::var_os(IN_NETNS).is_some() {
        // The copy inside the namespace: only `lo`, down until we bring it up.
        let up = Command::new("ip").args(["link", "set", "lo", "up"]).status();
        assert!(up.as_ref().is_ok_and(|s| s.success()), "cannot bring lo up in the network namespace: {up:?}");
        browser_call();
        return;
    }
    // Installing needs the host's network: before entering the namespace.
    install_browser_deps();
    let unshare = Command::new("unshare")
        .args(["--net", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !unshare.is_ok_and(|s| s.success()) {
        eprintln!(
            "browser test: no network namespace could be made (unshare --net, needs root): running on the \
             host's network, kept on 127.0.0.1 by Chromium's flags and the page's candidate filter only"
        );
        browser_call();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let exe = exe.to_str().expect("test binary path");
    let mut copy = Proc::spawn(
        "unshare",
        &["--net", "--", exe, "--exact", TEST_NAME, "--nocapture", "--test-threads=1"],
        None,
        &[(IN_NETNS, "1")],
    );
    let code = copy.wait(NETNS_TIMEOUT);
    // The copy's own output, without its test harness lines.
    for line in copy.stdout().iter().filter(|l| !l.starts_with("running ") && !l.starts_with("test ")) {
        if !line.trim().is_empty() {
            eprintln!("{line}");
        }
    }
    eprint!("{}", copy.stderr());
    assert_eq!(code, 0, "the browser test failed inside its network namespace (output above)");
}

/// The call itself: sipact, the page server, Chromium, and the checks.
fn browser_call() {
    let started = Instant::now();
    let dir = scratch("browser");
    let bundle = bundle(&dir);

    let port = free_port();
    let mut listener = listen(
        port,
        &[
            "--transport",
            "ws",
            "--media",
            "webrtc",
            "--answer",
            "auto",
            "--echo",
            "--events",
            "json",
            "--max-calls",
            "1",
        ],
    );

    let server = PageServer::start(vec![
        ("index.html", "text/html; charset=utf-8", std::fs::read(page_dir().join("index.html")).expect("index.html")),
        ("app.bundle.js", "text/javascript; charset=utf-8", std::fs::read(&bundle).expect("bundle")),
    ]);
    let url = format!(
        "http://127.0.0.1:{}/index.html?ws=ws://127.0.0.1:{port}&target=sip:echo@127.0.0.1&packets={MIN_PACKETS}&dtmf=1%23&echo_ms=1500",
        server.port
    );
    let mut chromium = Chromium::launch(&dir, &url);
    let posted = chromium.wait_for(&server.results, PAGE_TIMEOUT);
    chromium.kill();
    let body = posted.unwrap_or_else(|e| {
        panic!("{e}.\nchromium log (tail):\n{}\nsipact stderr:\n{}", chromium.log_tail(60), listener.stderr())
    });
    std::fs::write(dir.join("result.json"), &body).expect("write result.json");
    let result: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("the page posted bad JSON ({e}): {body}"));

    let code = listener.wait(Duration::from_secs(30));
    let events = listener.json_lines();
    let duration = started.elapsed();

    let stats = &result["stats"];
    let states: Vec<&str> =
        result["states"].as_array().map(|a| a.iter().filter_map(|s| s["state"].as_str()).collect()).unwrap_or_default();
    eprintln!(
        "browser test: {:.1} s in all (page {} ms); states {states:?}; inbound {}; outbound {}; selected pair {}; BYE {}; stripped {} candidates; result in {}",
        duration.as_secs_f64(),
        result["durationMs"],
        stats["inbound"],
        stats["outbound"],
        result["selectedCandidatePair"],
        result["byeResponse"],
        result["strippedCandidates"].as_array().map_or(0, Vec::len),
        dir.join("result.json").display()
    );
    for c in complaints(&result) {
        eprintln!("page: {c}");
    }
    let context = || {
        format!(
            "\nanswer SDP:\n{}\npage complaints:\n{}\nchromium log (tail):\n{}\nsipact stderr:\n{}\nsipact events: {events:?}",
            result["answerSdp"].as_str().unwrap_or("(none)"),
            complaints(&result).join("\n"),
            chromium.log_tail(40),
            listener.stderr()
        )
    };

    assert!(result.get("error").is_none(), "the page failed: {}{}", result["error"], context());
    let order: Vec<&str> = states.iter().copied().filter(|s| *s != "Terminating").collect();
    assert_eq!(order, ["Establishing", "Established", "Terminated"], "session states{}", context());
    let packets = stats["inbound"]["packetsReceived"].as_u64().unwrap_or(0);
    let bytes = stats["inbound"]["bytesReceived"].as_u64().unwrap_or(0);
    assert!(packets >= MIN_PACKETS, "inbound-rtp audio packetsReceived {packets} < {MIN_PACKETS}{}", context());
    assert!(bytes > 0, "inbound-rtp audio bytesReceived is 0{}", context());
    let sent = stats["outbound"]["packetsSent"].as_u64().unwrap_or(0);
    assert!(sent > 0, "outbound-rtp audio packetsSent is 0{}", context());
    assert!(stats["inbound"]["mimeType"].as_str().is_some_and(|m| m.starts_with("audio/")), "codec{}", context());
    // The audio came from sipact: the pair ICE selected ends at a candidate
    // of sipact's answer.
    let answered: Vec<String> = result["answerSdp"]
        .as_str()
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| c.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > 5)
        .map(|f| format!("{} {}:{} host", f[2].to_ascii_lowercase(), f[4], f[5]))
        .collect();
    let remote = result["selectedCandidatePair"]["remote"].as_str().unwrap_or("(none)");
    assert!(
        answered.iter().any(|c| c == remote),
        "selected remote candidate {remote} is not in sipact's answer {answered:?}"
    );
    for line in result["offerSdp"].as_str().unwrap_or("").lines().filter(|l| l.starts_with("a=candidate:")) {
        assert_eq!(line.split(' ').nth(4), Some("127.0.0.1"), "a non-loopback candidate was offered: {line}");
    }

    // The echo: what came back from sipact is the fake microphone's audio,
    // not silence.
    let later = &result["statsLater"]["inbound"];
    let energy = later["totalAudioEnergy"].as_f64().unwrap_or(0.0);
    eprintln!("browser test: later inbound {later}; DTMF sent by the page: {}", result["dtmfSent"]);
    assert!(energy > 0.0, "the audio echoed by sipact has no energy: {later}{}", context());
    assert_eq!(result["dtmfSent"], true, "RTCDTMFSender refused the tones{}", context());

    // sipact's side: one inbound call, established, ended by the peer's BYE.
    let calls = by_call(&events);
    assert_eq!(calls.len(), 1, "sipact events: {events:?}");
    let ev = calls.values().next().expect("one call");
    let n = names(ev);
    assert_eq!(n.first().map(String::as_str), Some("incoming"), "{n:?}");
    assert!(n.contains(&"accepted".to_owned()), "sipact never established the session: {n:?}");
    assert!(n.contains(&"bye".to_owned()), "sipact saw no BYE: {n:?}");
    let last = ev.last().expect("events");
    assert_eq!(last["event"], "terminated", "{n:?}");
    assert_eq!(last["cause"], "Bye", "{last}");
    assert_eq!(ev[0]["direction"], "inbound");
    // The browser's RFC 4733 digits, decoded by sipact's WebRTC handler.
    let tones: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "dtmf" && e["outgoing"] == false)
        .filter_map(|e| e["tone"].as_str())
        .collect();
    assert_eq!(tones, ["1", "#"], "sipact events: {n:?}");
    assert_eq!(code, 0, "sipact listen --max-calls 1 exit status; stderr: {}", listener.stderr());
}
