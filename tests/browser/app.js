// The page of tests/browser.rs: SIP.js 0.21 calls sipact over WebSocket
// with WebRTC audio (fake devices), checks through getStats() that audio
// packets arrive from sipact, hangs up, and POSTs what it saw to /result on
// the server that served it.
//
// Query string: ws (WebSocket URL of sipact, ws://127.0.0.1:PORT), target
// (SIP URI to call, default sip:echo@127.0.0.1), packets (inbound audio
// packets to wait for, default 50), stats_ms (how long to wait for them,
// default 20000).
//
// Loopback only: every a=candidate line whose address is not 127.0.0.1 is
// removed from the offer, and the connection and default-candidate
// addresses are set to 127.0.0.1.

import { Inviter, SessionState, UserAgent, Web } from "sip.js";

const params = new URLSearchParams(window.location.search);
const WS = params.get("ws");
const TARGET = params.get("target") || "sip:echo@127.0.0.1";
const PACKETS = Number(params.get("packets") || 50);
const STATS_MS = Number(params.get("stats_ms") || 20000);
const DTMF = params.get("dtmf") || "";
const ECHO_MS = Number(params.get("echo_ms") || 0);
const ESTABLISH_MS = 15000;
const TERMINATE_MS = 5000;
const LOOPBACK = "127.0.0.1";

const t0 = performance.now();
const since = () => Math.round(performance.now() - t0);

// Log lines (SIP.js at debug level, and the page's own), bounded.
const MAX_LOG_LINES = 3000;
const MAX_LOG_LINE = 6000;
const logs = [];
let logsDropped = 0;
function log(level, category, text) {
  if (logs.length >= MAX_LOG_LINES) {
    logsDropped += 1;
    return;
  }
  let line = `${since()}ms ${level} ${category} ${text}`;
  if (line.length > MAX_LOG_LINE) {
    line = `${line.slice(0, MAX_LOG_LINE)}... (${line.length} chars)`;
  }
  logs.push(line);
}
function status(text) {
  log("info", "page", text);
  const el = document.getElementById("status");
  if (el) {
    el.textContent += `\n${since()}ms ${text}`;
  }
}

const result = {
  userAgent: navigator.userAgent,
  ws: WS,
  target: TARGET,
  states: [],
  peerConnectionStates: [],
  strippedCandidates: [],
  offerSdp: null,
  answerSdp: null,
  stats: null,
  statsPolls: 0,
  selectedCandidatePair: null,
  durationMs: null,
  logs,
};

window.addEventListener("error", (e) => log("error", "window", `${e.message} at ${e.filename}:${e.lineno}`));
window.addEventListener("unhandledrejection", (e) => log("error", "window", `unhandled rejection: ${describe(e.reason)}`));

function describe(e) {
  if (e instanceof Error) {
    return `${e.name}: ${e.message}${e.stack ? `\n${e.stack}` : ""}`;
  }
  try {
    return typeof e === "string" ? e : JSON.stringify(e);
  } catch {
    return String(e);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// Keeps only the 127.0.0.1 candidates of an SDP and points the connection
/// and default-candidate addresses at 127.0.0.1.
function loopbackOnly(sdp, where) {
  const lines = sdp.split(/\r\n|\n/);
  const kept = [];
  let defaultPort = null;
  for (const line of lines) {
    if (line.startsWith("a=candidate:")) {
      // a=candidate:foundation component transport priority address port typ ...
      const f = line.slice("a=candidate:".length).split(" ");
      if (f[4] !== LOOPBACK) {
        result.strippedCandidates.push(`${where}: ${line}`);
        continue;
      }
      if (defaultPort === null && f[2].toLowerCase() === "udp") {
        defaultPort = f[5];
      }
    }
    kept.push(line);
  }
  const out = kept.map((line) => {
    if (line.startsWith("c=IN ") && !/^c=IN IP4 (127\.0\.0\.1|0\.0\.0\.0)$/.test(line)) {
      return `c=IN IP4 ${LOOPBACK}`;
    }
    const rtcp = /^a=rtcp:(\d+) IN IP[46] (\S+)$/.exec(line);
    if (rtcp && rtcp[2] !== LOOPBACK && rtcp[2] !== "0.0.0.0") {
      return `a=rtcp:${defaultPort || rtcp[1]} IN IP4 ${LOOPBACK}`;
    }
    const m = /^m=(\S+) (\d+) (.*)$/.exec(line);
    if (m && defaultPort !== null && m[2] !== "9" && m[2] !== "0") {
      return `m=${m[1]} ${defaultPort} ${m[3]}`;
    }
    return line;
  });
  return out.join("\r\n");
}

/// The modifier on the Inviter. SIP.js applies modifiers to the offer
/// before setLocalDescription(), that is before ICE gathering: the
/// candidates gathered afterwards are removed by the factory below, which
/// filters the description SIP.js actually sends.
function stripNonLoopbackCandidates(description) {
  return Promise.resolve({ type: description.type, sdp: loopbackOnly(description.sdp, "modifier") });
}

const baseFactory = Web.defaultSessionDescriptionHandlerFactory();
function loopbackSessionDescriptionHandlerFactory(session, options) {
  const sdh = baseFactory(session, options);
  const getLocal = sdh.getLocalSessionDescription.bind(sdh);
  sdh.getLocalSessionDescription = () =>
    getLocal().then((d) => {
      const sdp = loopbackOnly(d.sdp, "local description");
      result.offerSdp = sdp;
      return { type: d.type, sdp };
    });
  return sdh;
}

async function pollStats(pc) {
  const deadline = performance.now() + STATS_MS;
  let last = null;
  while (performance.now() < deadline) {
    last = await readStats(pc);
    result.statsPolls += 1;
    if (last.inbound && last.inbound.packetsReceived >= PACKETS) {
      return last;
    }
    await sleep(250);
  }
  return last;
}

async function readStats(pc) {
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  const out = { atMs: since(), inbound: null, outbound: null };
  for (const s of byId.values()) {
    const kind = s.kind || s.mediaType;
    if (s.type === "inbound-rtp" && kind === "audio") {
      const codec = s.codecId ? byId.get(s.codecId) : undefined;
      out.inbound = {
        packetsReceived: s.packetsReceived || 0,
        bytesReceived: s.bytesReceived || 0,
        totalAudioEnergy: s.totalAudioEnergy || 0,
        totalSamplesReceived: s.totalSamplesReceived || 0,
        packetsLost: s.packetsLost,
        jitter: s.jitter,
        ssrc: s.ssrc,
        mimeType: codec ? codec.mimeType : null,
        clockRate: codec ? codec.clockRate : null,
        payloadType: codec ? codec.payloadType : null,
      };
    } else if (s.type === "outbound-rtp" && kind === "audio") {
      const codec = s.codecId ? byId.get(s.codecId) : undefined;
      out.outbound = {
        packetsSent: s.packetsSent || 0,
        bytesSent: s.bytesSent || 0,
        ssrc: s.ssrc,
        mimeType: codec ? codec.mimeType : null,
      };
    } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      const local = byId.get(s.localCandidateId);
      const remote = byId.get(s.remoteCandidateId);
      result.selectedCandidatePair = {
        local: local ? `${local.protocol} ${local.address || local.ip}:${local.port} ${local.candidateType}` : null,
        remote: remote ? `${remote.protocol} ${remote.address || remote.ip}:${remote.port} ${remote.candidateType}` : null,
      };
    }
  }
  return out;
}

function waitFor(states, ms) {
  return new Promise((resolve, reject) => {
    const check = () => states.includes(inviterState());
    if (check()) {
      resolve(inviterState());
      return;
    }
    const timer = setTimeout(() => {
      reject(new Error(`no ${states.join(" or ")} within ${ms} ms (state ${inviterState()})`));
    }, ms);
    waiters.push(() => {
      if (check()) {
        clearTimeout(timer);
        resolve(inviterState());
        return true;
      }
      return false;
    });
  });
}
let waiters = [];
let inviter = null;
const inviterState = () => (inviter ? inviter.state : "none");

async function post(body) {
  const text = JSON.stringify(body);
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const r = await fetch("/result", { method: "POST", headers: { "Content-Type": "application/json" }, body: text });
      if (r.ok) {
        status(`result posted (${text.length} bytes)`);
        return;
      }
    } catch (e) {
      log("error", "page", `POST /result failed: ${describe(e)}`);
    }
    await sleep(500);
  }
}

async function run() {
  if (!WS) {
    throw new Error("no ws parameter in the query string");
  }
  const ua = new UserAgent({
    uri: UserAgent.makeURI("sip:browser@127.0.0.1"),
    displayName: "SIP.js browser test",
    transportOptions: { server: WS, connectionTimeout: 5 },
    sessionDescriptionHandlerFactory: loopbackSessionDescriptionHandlerFactory,
    sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers: [] } },
    logLevel: "debug",
    logBuiltinEnabled: false,
    logConnector: (level, category, label, content) => log(level, label ? `${category}|${label}` : category, content),
  });
  result.ua = ua;
  status(`connecting to ${WS}`);
  await ua.start();
  status("transport connected");

  const target = UserAgent.makeURI(TARGET);
  if (!target) {
    throw new Error(`bad target ${TARGET}`);
  }
  inviter = new Inviter(ua, target, {
    sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } },
    sessionDescriptionHandlerModifiers: [stripNonLoopbackCandidates],
  });
  inviter.stateChange.addListener((state) => {
    result.states.push({ state, atMs: since(), at: new Date().toISOString() });
    status(`session state ${state}`);
    waiters = waiters.filter((w) => !w());
  });
  const rejected = [];
  await inviter.invite({
    requestDelegate: {
      onReject: (response) => rejected.push(`${response.message.statusCode} ${response.message.reasonPhrase}`),
      onAccept: (response) => status(`accepted: ${response.message.statusCode}`),
    },
  });
  status("INVITE sent");

  const reached = await waitFor([SessionState.Established, SessionState.Terminated], ESTABLISH_MS);
  if (reached !== SessionState.Established) {
    throw new Error(`the call ended before it was established${rejected.length ? `: ${rejected.join(", ")}` : ""}`);
  }
  const sdh = inviter.sessionDescriptionHandler;
  const pc = sdh && sdh.peerConnection;
  if (!pc) {
    throw new Error("no peer connection once established");
  }
  result.answerSdp = pc.remoteDescription ? pc.remoteDescription.sdp : null;
  result.offerSdp = pc.localDescription && !result.offerSdp ? pc.localDescription.sdp : result.offerSdp;
  const pcState = (what) => result.peerConnectionStates.push({ atMs: since(), what });
  pcState(`connection ${pc.connectionState}, ice ${pc.iceConnectionState}, signaling ${pc.signalingState}`);
  pc.addEventListener("connectionstatechange", () => pcState(`connection ${pc.connectionState}`));
  pc.addEventListener("iceconnectionstatechange", () => pcState(`ice ${pc.iceConnectionState}`));
  const remote = sdh.remoteMediaStream;
  const audio = document.getElementById("remote");
  if (audio && remote) {
    audio.srcObject = remote;
    audio.play().catch((e) => log("warn", "page", `audio.play(): ${describe(e)}`));
  }

  status("polling getStats()");
  const stats = await pollStats(pc);
  result.stats = stats;
  status(`stats: ${JSON.stringify(stats)}`);
  const enough = stats && stats.inbound && stats.inbound.packetsReceived >= PACKETS;

  // RFC 4733 DTMF from the browser (RTCDTMFSender through SIP.js), then a
  // second look at the stats: sipact echoes the fake microphone's beeps,
  // so the audio received has energy.
  if (DTMF) {
    status(`sending DTMF ${DTMF}`);
    result.dtmfSent = sdh.sendDtmf(DTMF, { duration: 100, interToneGap: 70 });
    await sleep(400 + DTMF.length * 250);
  }
  await sleep(ECHO_MS);
  result.statsLater = await readStats(pc);

  status("hanging up");
  if (inviter.state === SessionState.Established) {
    result.byeResponse = await hangUp();
  }
  await waitFor([SessionState.Terminated], TERMINATE_MS);
  await ua.stop().catch((e) => log("warn", "page", `ua.stop(): ${describe(e)}`));
  delete result.ua;
  if (!enough) {
    throw new Error(
      `fewer than ${PACKETS} inbound audio packets within ${STATS_MS} ms: ${JSON.stringify(stats)}; ` +
        `peer connection: ${JSON.stringify(result.peerConnectionStates)}`,
    );
  }
}

/// Sends BYE and waits (bounded) for its final response, so the transport
/// is not closed under it.
function hangUp() {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no final response to BYE within ${TERMINATE_MS} ms`)), TERMINATE_MS);
    const done = (response) => {
      clearTimeout(timer);
      const r = `${response.message.statusCode} ${response.message.reasonPhrase}`;
      status(`BYE answered: ${r}`);
      resolve(r);
    };
    inviter.bye({ requestDelegate: { onAccept: done, onReject: done } }).catch((e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function main() {
  let error = null;
  try {
    await run();
  } catch (e) {
    error = describe(e);
    status(`FAILED: ${error}`);
    try {
      if (inviter && inviter.state === SessionState.Established) {
        await hangUp();
        await waitFor([SessionState.Terminated], TERMINATE_MS);
      }
      if (result.ua) {
        // SIP.js may have sent a BYE of its own (an answer it could not
        // apply): let its response arrive before the transport closes.
        await sleep(1000);
        await result.ua.stop();
      }
    } catch (e2) {
      log("warn", "page", `cleanup after the failure: ${describe(e2)}`);
    }
  }
  delete result.ua;
  result.durationMs = since();
  result.logsDropped = logsDropped;
  if (error) {
    result.error = error;
  }
  status(error ? "done (failed)" : "done");
  await post(result);
}

main();
