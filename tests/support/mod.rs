//! Helpers for the command tests: run `sipact` and SIPp as child processes
//! (on 127.0.0.1 only, always with a deadline, killed by PID if they
//! overstay), collect their output, install the test peers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `sipact` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sipact")
}

/// Runs `scripts/install-test-deps.sh` once per test binary (it installs
/// SIPp and tshark when missing), then checks that `tool` runs. Fails the
/// test with a clear message otherwise: these tests are never skipped.
pub fn require(tool: &str) {
    static INSTALL: OnceLock<Result<(), String>> = OnceLock::new();
    let r = INSTALL.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-test-deps.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}): {}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    if let Err(e) = r {
        panic!("the interop tests need SIPp (Debian sip-tester) and tshark, and installing them failed: {e}");
    }
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is still not on PATH after scripts/install-test-deps.sh; install it (apt-get install sip-tester tshark)"
    );
}

/// A port free for both UDP and TCP on 127.0.0.1.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = u.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A fresh scratch folder (SIPp writes its logs into the current folder).
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sipact-tests-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// A child process whose output is collected as it comes.
pub struct Proc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `program args` in `dir`, with extra environment variables.
    pub fn spawn(program: &str, args: &[&str], dir: Option<&Path>, env: &[(&str, &str)]) -> Proc {
        let mut c = Command::new(program);
        c.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(d) = dir {
            c.current_dir(d);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let o = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                o.lock().unwrap().push(line);
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let e = err.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => e.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Proc { child, out, err, status: None }
    }

    /// Starts `sipact args`.
    pub fn sipact(args: &[&str]) -> Proc {
        Proc::spawn(bin(), args, None, &[])
    }

    /// Waits until standard error contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.err.lock().unwrap().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no {needle:?} on standard error within {timeout:?}; stderr: {}", self.stderr());
    }

    /// Waits for the exit, at most `timeout`; kills the process (by its
    /// PID) and fails the test if it overstays.
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.status = Some(s);
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return s.code().unwrap_or(-1);
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "process {} still running after {timeout:?}; killed. stderr: {}\nstdout: {}",
                    self.child.id(),
                    self.stderr(),
                    self.stdout().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM (to this child only, by PID).
    pub fn terminate(&self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
    }

    /// Standard output so far, by line.
    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// The JSON lines of standard output.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .iter()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `sipact listen` on 127.0.0.1:`port` with `args` and waits until it listens.
pub fn listen(port: u16, args: &[&str]) -> Proc {
    let bind = format!("127.0.0.1:{port}");
    let mut a = vec!["listen", "--bind", &bind];
    a.extend_from_slice(args);
    let p = Proc::sipact(&a);
    p.wait_stderr("listening on", Duration::from_secs(10));
    p
}

/// What a SIPp run ended with.
#[derive(Debug)]
pub struct SippRun {
    /// Exit status (0: every call succeeded).
    pub code: i32,
    /// Successful calls (cumulative, from the statistics file).
    pub successful: u64,
    /// Failed calls.
    pub failed: u64,
    /// Retransmissions.
    pub retransmissions: u64,
    /// Its output and error log, for failure messages.
    pub log: String,
}

/// The options every SIPp run gets: loopback only, a bounded run, logs and
/// statistics in the scratch folder.
pub fn sipp_base(local_port: u16) -> Vec<String> {
    [
        "-i",
        "127.0.0.1",
        "-p",
        &local_port.to_string(),
        "-nostdin",
        "-buff_size",
        "4194304",
        "-timeout",
        "90",
        "-trace_stat",
        "-stf",
        "stat.csv",
        "-fd",
        "1",
        "-trace_err",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Starts SIPp in `dir`.
pub fn sipp_spawn(dir: &Path, args: &[String]) -> Proc {
    require("sipp");
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn("sipp", &a, Some(dir), &[])
}

/// Waits for SIPp and reads its statistics.
pub fn sipp_finish(dir: &Path, mut p: Proc, timeout: Duration) -> SippRun {
    let code = p.wait(timeout);
    let stat = std::fs::read_to_string(dir.join("stat.csv")).unwrap_or_default();
    let mut lines = stat.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = lines.next_back().unwrap_or("").split(';').collect();
    let col = |name: &str| {
        head.iter().position(|h| *h == name).and_then(|i| last.get(i)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    let mut log = format!("stderr: {}\n", p.stderr());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with("_errors.log") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                log.push_str(&text.chars().take(4000).collect::<String>());
            }
        }
    }
    SippRun {
        code,
        successful: col("SuccessfulCall(C)"),
        failed: col("FailedCall(C)"),
        retransmissions: col("Retransmissions(C)"),
        log,
    }
}

/// Runs SIPp to the end.
pub fn sipp(dir: &Path, args: &[String], timeout: Duration) -> SippRun {
    let p = sipp_spawn(dir, args);
    sipp_finish(dir, p, timeout)
}

/// The path of a scenario under tests/sipp.
pub fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name).display().to_string()
}

/// The events of each session, by call-id, in order.
pub fn by_call(lines: &[serde_json::Value]) -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
    let mut m: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    for l in lines {
        if let Some(c) = l["call_id"].as_str() {
            m.entry(c.to_owned()).or_default().push(l.clone());
        }
    }
    m
}

/// The event names of a session.
pub fn names(events: &[serde_json::Value]) -> Vec<String> {
    events.iter().map(|e| e["event"].as_str().unwrap_or("").to_owned()).collect()
}
