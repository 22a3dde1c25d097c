#!/usr/bin/env node
'use strict';
// Load generator for Pomelo-protocol servers (pomelo_twisted, pinus, the bare Node echo).
// A self-contained client of the wire protocol (protocol.js); `ws` for WebSocket only.
//
//   node loadgen.js echo      [options]   request/response rate and latency
//   node loadgen.js idle      [options]   many open connections, heartbeats answered
//   node loadgen.js broadcast [options]   chat room fan-out: push delivery, order, latency
//
// Prints exactly one JSON object on stdout at the end; progress goes to stderr with --verbose.
// See README.md for every option and field.

const net = require('net');
const { fork } = require('child_process');
const { performance } = require('perf_hooks');
const P = require('./protocol');
const { Hist } = require('./hist');

const VERSION = '0.1.0';
const HANDSHAKE = P.encodePackage(
  P.PKG_HANDSHAKE,
  Buffer.from(JSON.stringify({ sys: { type: 'loadgen', version: VERSION }, user: {} })),
);
const MAX_EXAMPLES = 5;

// Wall-clock milliseconds with sub-microsecond resolution, comparable across processes
// of one machine (performance.timeOrigin is the wall-clock time of process start).
const nowWall = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- options

const OPTIONS = {
  host: ['str', '127.0.0.1'],
  port: ['int', 3010],
  transport: ['str', 'tcp'],
  path: ['str', '/'],
  clients: ['int', 100],
  inflight: ['int', 1],
  duration: ['num', 5],
  warmup: ['num', 1],
  route: ['str', 'connector.entryHandler.echo'],
  'body-bytes': ['int', 100],
  'entry-route': ['str', null],
  'entry-uid-prefix': ['str', null],
  procs: ['int', 1],
  'connect-rate': ['num', 500],
  timeout: ['num', 10],
  members: ['int', 100],
  senders: ['int', 1],
  rate: ['num', 10],
  room: ['str', 'bench'],
  'join-route': ['str', 'chat.chatHandler.join'],
  'send-route': ['str', 'chat.chatHandler.send'],
  'push-route': ['str', 'onChat'],
  'no-dict': ['flag', false],
  verbose: ['flag', false],
  histogram: ['flag', false],
};

const USAGE = `usage: node loadgen.js echo|idle|broadcast [options]
common:    --host 127.0.0.1 --port 3010 --transport tcp|ws [--path /] --procs 1
           --connect-rate 500 (new connections/s, all procs together) --timeout 10 (s)
           --no-dict (never compress routes) --verbose --histogram (include buckets)
echo:      --clients 100 --inflight 1 --duration 5 --warmup 1
           --route connector.entryHandler.echo --body-bytes 100
           [--entry-route connector.entryHandler.entry --entry-uid-prefix lg]  (uid = prefix + client index)
idle:      --clients N --duration S
broadcast: --members 100 --senders 1 --rate 10 (msg/s per sender) --duration 5 --warmup 1
           --room bench [--entry-route connector.entryHandler.entry --entry-uid-prefix m]
           [--join-route chat.chatHandler.join --send-route chat.chatHandler.send --push-route onChat]
`;

function usage(msg) {
  if (msg) process.stderr.write('loadgen: ' + msg + '\n');
  process.stderr.write(USAGE);
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
  const mode = argv[0];
  if (mode === '-h' || mode === '--help') usage();
  if (!['echo', 'idle', 'broadcast'].includes(mode)) usage('first argument must be echo, idle or broadcast');
  const cfg = { mode };
  for (const [k, [, def]] of Object.entries(OPTIONS)) cfg[k] = def;
  for (let i = 1; i < argv.length; i++) {
    let a = argv[i];
    if (!a.startsWith('--')) usage('unexpected argument ' + a);
    a = a.slice(2);
    let val = null;
    const eq = a.indexOf('=');
    if (eq >= 0) {
      val = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const spec = OPTIONS[a];
    if (!spec) usage('unknown option --' + a);
    if (spec[0] === 'flag') {
      cfg[a] = true;
      continue;
    }
    if (val === null) {
      if (i + 1 >= argv.length) usage('--' + a + ' needs a value');
      val = argv[++i];
    }
    if (spec[0] === 'str') cfg[a] = val;
    else {
      const n = Number(val);
      if (!Number.isFinite(n) || (spec[0] === 'int' && !Number.isInteger(n))) usage('--' + a + ' wants a number');
      cfg[a] = n;
    }
  }
  if (cfg.mode === 'broadcast' && cfg['entry-route'] === null) cfg['entry-route'] = 'connector.entryHandler.entry';
  if (cfg['entry-uid-prefix'] === null) cfg['entry-uid-prefix'] = cfg.mode === 'broadcast' ? 'm' : 'lg';
  if (!['tcp', 'ws'].includes(cfg.transport)) usage('--transport is tcp or ws');
  if (cfg.procs < 1) usage('--procs >= 1');
  if (cfg.inflight < 1) usage('--inflight >= 1');
  if (!(cfg.duration > 0) || cfg.warmup < 0) usage('--duration > 0, --warmup >= 0');
  if (!(cfg['connect-rate'] > 0)) usage('--connect-rate > 0');
  if (cfg.mode === 'broadcast') {
    if (cfg.senders < 1 || cfg.senders > cfg.members) usage('1 <= --senders <= --members');
    if (!(cfg.rate > 0)) usage('--rate > 0');
  }
  if (cfg.mode === 'idle') cfg.warmup = 0;
  return cfg;
}

// ---------------------------------------------------------------- stats

function newStats() {
  return {
    counters: {
      connected: 0,
      connect_failures: 0,
      handshake_failures: 0,
      entry_failures: 0,
      closed: 0,
      kicks: 0,
      protocol_errors: 0,
      heartbeat_timeouts: 0,
      heartbeats_sent: 0,
      heartbeats_received: 0,
      unexpected_ids: 0,
      dict_conns: 0, // connections whose handshake said useDict (routes compressed)
      compressed_pushes: 0,
    },
    hists: { handshake: new Hist() },
    examples: [],
  };
}

function example(stats, text) {
  if (stats.examples.length < MAX_EXAMPLES) stats.examples.push(String(text).slice(0, 300));
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.prototype.hasOwnProperty.call(b, k) || !deepEqual(a[k], b[k])) return false;
  return true;
}

// ---------------------------------------------------------------- connection

// All open connections of this process (for the timeout sweep and shutdown).
const CONNS = new Set();

class Conn {
  constructor(cfg, stats, index) {
    this.cfg = cfg;
    this.stats = stats;
    this.index = index;
    this.state = 'new'; // new -> handshaking -> working -> closed
    this.closing = false; // we are closing it on purpose
    this.nextId = 0;
    this.pending = new Map(); // id -> entry {cb, t0, pkg, ...}
    this.dict = null; // route -> code when the server said useDict
    this.codeToRoute = null;
    this.heartbeatMs = 0;
    this.hbTimer = null;
    this.hbTimeoutTimer = null;
    this.lastRecv = 0;
    this.lastHbSent = 0;
    this.routes = new Map();
    this.onPush = null; // (route, bodyBuffer) => void
    this.onClose = null;
    this.sock = null;
    this.ws = null;
  }

  // Connect, handshake, ack.  Resolves with the handshake time in ms.
  open() {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      let settled = false;
      const fail = (why) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.closing = true;
        this.destroy();
        reject(new Error(why));
      };
      const timer = setTimeout(() => fail('handshake timeout'), this.cfg.timeout * 1000);
      this._opened = (err) => {
        if (settled) return;
        if (err) return fail(err);
        settled = true;
        clearTimeout(timer);
        resolve(performance.now() - t0);
      };
      CONNS.add(this);
      this.state = 'handshaking';
      if (this.cfg.transport === 'tcp') {
        const sock = net.connect({ host: this.cfg.host, port: this.cfg.port });
        this.sock = sock;
        sock.setNoDelay(true);
        const reader = new P.PackageReader((t, b) => this.onPackage(t, b));
        this.reader = reader;
        sock.on('connect', () => sock.write(HANDSHAKE));
        sock.on('data', (chunk) => {
          // requests issued while handling one read leave in one write
          sock.cork();
          reader.feed(chunk);
          sock.uncork();
        });
        sock.on('error', (e) => {
          this.lastError = e.code || e.message;
        });
        sock.on('close', () => this.handleClose());
      } else {
        const WebSocket = require('ws');
        const url = `ws://${this.cfg.host}:${this.cfg.port}${this.cfg.path}`;
        const ws = new WebSocket(url, { perMessageDeflate: false });
        this.ws = ws;
        ws.on('open', () => ws.send(HANDSHAKE, { binary: true }));
        ws.on('message', (data) => {
          const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
          // the server may put several packages in one message; a package never spans messages
          if (!P.forEachPackage(buf, (t, b) => this.onPackage(t, b))) {
            this.stats.counters.protocol_errors++;
            example(this.stats, 'incomplete package in a WebSocket message');
          }
        });
        ws.on('error', (e) => {
          this.lastError = e.code || e.message;
        });
        ws.on('close', () => this.handleClose());
      }
    });
  }

  send(buf) {
    if (this.state === 'closed') return;
    if (this.sock) this.sock.write(buf);
    else if (this.ws && this.ws.readyState === 1) this.ws.send(buf, { binary: true });
  }

  route(name) {
    let r = this.routes.get(name);
    if (!r) {
      r = P.encodeRoute(name, this.dict);
      this.routes.set(name, r);
    }
    return r;
  }

  // Send a request; cb(err, bodyBuffer, entry) with err null | 'timeout' | 'closed'.
  // Returns the entry: {t0 (performance.now() at send), pkg, bodyStart, ...}.
  request(routeName, body, cb) {
    let id = this.nextId >= P.MAX_ID ? 1 : this.nextId + 1;
    while (this.pending.has(id)) id = id >= P.MAX_ID ? 1 : id + 1;
    this.nextId = id;
    const pkg = P.encodeDataPackage(P.MSG_REQUEST, id, this.route(routeName), body);
    const bodyLen = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    const entry = { id, cb, t0: performance.now(), pkg, bodyStart: pkg.length - bodyLen };
    this.pending.set(id, entry);
    this.send(pkg);
    return entry;
  }

  // Promise form with the body parsed as JSON (null when not JSON).
  call(routeName, obj) {
    return new Promise((resolve, reject) => {
      this.request(routeName, JSON.stringify(obj), (err, body) => {
        if (err) return reject(new Error(routeName + ': ' + err));
        let parsed = null;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch (e) {
          parsed = null;
        }
        resolve(parsed);
      });
    });
  }

  onPackage(type, body) {
    this.lastRecv = performance.now();
    const c = this.stats.counters;
    switch (type) {
      case P.PKG_HANDSHAKE:
        return this.onHandshake(body);
      case P.PKG_HEARTBEAT:
        c.heartbeats_received++;
        this.scheduleHeartbeat();
        return;
      case P.PKG_DATA: {
        let m;
        try {
          m = P.decodeMessage(body);
        } catch (e) {
          c.protocol_errors++;
          example(this.stats, 'undecodable message: ' + e.message);
          return;
        }
        if (m.type === P.MSG_RESPONSE) {
          const entry = this.pending.get(m.id);
          if (!entry) {
            c.unexpected_ids++;
            return;
          }
          this.pending.delete(m.id);
          entry.cb(null, m.body, entry);
        } else if (m.type === P.MSG_PUSH) {
          let route = m.route;
          if (m.compressed) {
            this.stats.counters.compressed_pushes++;
            route = (this.codeToRoute && this.codeToRoute[route]) || '#' + route;
          }
          if (this.onPush) this.onPush(route, m.body);
        } else {
          c.protocol_errors++;
          example(this.stats, 'message type ' + m.type + ' from server');
        }
        return;
      }
      case P.PKG_KICK:
        c.kicks++;
        example(this.stats, 'kick: ' + body.toString('utf8'));
        return;
      default:
        c.protocol_errors++;
        example(this.stats, 'package type ' + type + ' from server');
        this.destroy();
    }
  }

  onHandshake(body) {
    if (this.state !== 'handshaking') return;
    let h = null;
    try {
      h = JSON.parse(body.toString('utf8'));
    } catch (e) {
      h = null;
    }
    if (!h || h.code !== 200) {
      this.stats.counters.handshake_failures++;
      example(this.stats, 'handshake reply: ' + body.toString('utf8'));
      this._opened('handshake code ' + (h && h.code));
      return;
    }
    const sys = h.sys || {};
    if (sys.heartbeat > 0) this.heartbeatMs = sys.heartbeat * 1000;
    // Compress routes like the reference clients: only when the server says useDict.
    const dict = sys.dict || sys.routeToCode;
    if (sys.useDict && dict && !this.cfg['no-dict']) {
      this.stats.counters.dict_conns++;
      this.dict = dict;
      this.codeToRoute = {};
      for (const [r, code] of Object.entries(dict)) this.codeToRoute[code] = r;
    } else if (dict) {
      // no compression of requests, but still decode compressed pushes
      this.codeToRoute = {};
      for (const [r, code] of Object.entries(dict)) this.codeToRoute[code] = r;
    }
    this.send(P.ACK_PACKAGE);
    this.state = 'working';
    this.scheduleHeartbeat();
    this._opened(null);
  }

  // Reference-client heartbeat: one pending heartbeat at a time, sent H after the
  // last server heartbeat (or the ack); the server is dead when nothing at all
  // arrived within 2 H of sending one.
  scheduleHeartbeat() {
    if (!this.heartbeatMs || this.hbTimer || this.state !== 'working') return;
    this.hbTimer = setTimeout(() => {
      this.hbTimer = null;
      if (this.state !== 'working') return;
      this.send(P.HEARTBEAT_PACKAGE);
      this.stats.counters.heartbeats_sent++;
      this.lastHbSent = performance.now();
      clearTimeout(this.hbTimeoutTimer);
      this.hbTimeoutTimer = setTimeout(() => {
        if (this.state === 'working' && this.lastRecv < this.lastHbSent) {
          this.stats.counters.heartbeat_timeouts++;
          this.destroy();
        }
      }, 2 * this.heartbeatMs);
    }, this.heartbeatMs);
  }

  destroy() {
    if (this.sock) this.sock.destroy();
    if (this.ws) this.ws.terminate();
  }

  close() {
    this.closing = true;
    this.destroy();
  }

  handleClose() {
    if (this.state === 'closed') return;
    const wasWorking = this.state === 'working';
    this.state = 'closed';
    CONNS.delete(this);
    clearTimeout(this.hbTimer);
    clearTimeout(this.hbTimeoutTimer);
    if (this.reader) this.reader.stopped = true;
    if (!wasWorking) {
      if (this._opened) this._opened('closed before handshake' + (this.lastError ? ' (' + this.lastError + ')' : ''));
      return;
    }
    if (!this.closing) this.stats.counters.closed++;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const e of pending) e.cb('closed', null, e);
    if (this.onClose) this.onClose(this);
  }
}

// Requests older than --timeout are failed with 'timeout' (checked every 250 ms).
function startTimeoutSweep(cfg) {
  const limit = cfg.timeout * 1000;
  return setInterval(() => {
    const now = performance.now();
    for (const conn of CONNS) {
      if (!conn.pending.size) continue;
      for (const [id, e] of conn.pending) {
        if (now - e.t0 > limit) {
          conn.pending.delete(id);
          e.cb('timeout', null, e);
        }
      }
    }
  }, 250);
}

// Open the connections of `indices` at `rate` per second; `setup(conn, index)` runs
// after the handshake (entry, join).  Resolves with [{conn, index}] of those that worked.
function connectAll(cfg, stats, indices, rate, setup) {
  return new Promise((resolve) => {
    const out = [];
    let started = 0;
    let finished = 0;
    const t0 = performance.now();
    if (!indices.length) return resolve(out);
    const launch = (index) => {
      const conn = new Conn(cfg, stats, index);
      conn
        .open()
        .then(async (ms) => {
          stats.hists.handshake.recordMs(ms);
          stats.counters.connected++;
          if (setup) await setup(conn, index);
          out.push({ conn, index });
        })
        .catch((e) => {
          stats.counters.connect_failures++;
          example(stats, 'connect ' + index + ': ' + e.message);
        })
        .finally(() => {
          if (++finished === indices.length) resolve(out);
        });
    };
    const tick = () => {
      const due = Math.min(indices.length, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (started < due) launch(indices[started++]);
      if (started < indices.length) setTimeout(tick, 5);
    };
    tick();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const sleepUntilWall = (wallMs) => sleep(wallMs - nowWall());

function myIndices(total, pi, np) {
  const out = [];
  for (let i = pi; i < total; i += np) out.push(i);
  return out;
}

// CPU and event-loop utilisation of this process over the measurement window.
class Window {
  start() {
    this.t0 = performance.now();
    this.cpu0 = process.cpuUsage();
    this.elu0 = performance.eventLoopUtilization();
  }

  stop() {
    this.seconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    this.cpuSeconds = (cpu.user + cpu.system) / 1e6;
    this.sysSeconds = cpu.system / 1e6;
    this.elu = performance.eventLoopUtilization(this.elu0).utilization;
  }

  toJSON() {
    return { seconds: this.seconds, cpu_seconds: this.cpuSeconds, sys_seconds: this.sysSeconds, elu: this.elu };
  }
}

function progress(cfg, fn) {
  if (!cfg.verbose) return null;
  return setInterval(() => process.stderr.write(fn() + '\n'), 1000);
}

function workerResult(stats, win, extra) {
  const hists = {};
  for (const [k, h] of Object.entries(stats.hists)) hists[k] = h.toJSON();
  return { counters: stats.counters, hists, examples: stats.examples, window: win.toJSON(), pid: process.pid, ...extra };
}

async function closeAll(list) {
  for (const { conn } of list) conn.close();
  await sleep(50);
}

// ---------------------------------------------------------------- echo

async function echoWorker(cfg, pi, np, hooks) {
  const stats = newStats();
  Object.assign(stats.counters, {
    requests: 0,
    responses: 0,
    mismatches: 0,
    errors: 0,
    timeouts: 0,
    body_bytes_differ: 0,
  });
  const lat = (stats.hists.latency = new Hist());
  const sweep = startTimeoutSweep(cfg);
  const c = stats.counters;
  const entryRoute = cfg['entry-route'];
  const setup = entryRoute
    ? async (conn, i) => {
        try {
          const r = await conn.call(entryRoute, { uid: cfg['entry-uid-prefix'] + i });
          if (!r || (typeof r.code === 'number' && r.code >= 400)) {
            c.entry_failures++;
            example(stats, 'entry: ' + JSON.stringify(r));
          }
        } catch (e) {
          c.entry_failures++;
          example(stats, 'entry: ' + e.message);
        }
      }
    : null;
  const clients = await connectAll(cfg, stats, myIndices(cfg.clients, pi, np), cfg['connect-rate'] / np, setup);

  const epoch = await hooks.barrier('ready');
  const B = cfg['body-bytes'];
  const PAD = 'x'.repeat(Math.max(0, B));
  let measuring = false;
  let stopping = false;

  const startClient = (conn, ci) => {
    let seq = 0;
    const onResp = (err, resp, entry) => {
      if (err === 'timeout') {
        c.timeouts++;
        example(stats, `timeout: client ${ci} seq ${entry.seq}`);
        issue();
        return;
      }
      if (err) return; // connection closed (counted once per connection)
      const t = performance.now();
      c.responses++;
      const sent = entry.pkg.subarray(entry.bodyStart);
      if (!resp.equals(sent)) {
        // not byte-identical: compare as JSON (a server may re-serialise differently)
        let obj;
        try {
          obj = JSON.parse(resp.toString('utf8'));
        } catch (e) {
          obj = undefined;
        }
        if (obj && typeof obj === 'object' && typeof obj.code === 'number' && obj.code >= 400) {
          c.errors++;
          example(stats, 'error response: ' + resp.toString('utf8'));
          issue();
          return;
        }
        if (obj !== undefined && deepEqual(obj, JSON.parse(sent.toString('utf8')))) {
          c.body_bytes_differ++;
        } else {
          c.mismatches++;
          example(stats, `mismatch: sent ${sent.toString('utf8')} got ${resp.toString('utf8')}`);
          issue();
          return;
        }
      }
      if (measuring) {
        c.requests++;
        lat.recordMs(t - entry.t0);
      }
      issue();
    };
    const issue = () => {
      if (stopping || conn.state !== 'working') return;
      seq++;
      const head = `{"c":${ci},"s":${seq},"p":"`;
      const body = head + PAD.slice(0, Math.max(0, B - head.length - 2)) + '"}';
      conn.request(cfg.route, body, onResp).seq = seq;
    };
    // requests from one client start in one write
    if (conn.sock) conn.sock.cork();
    for (let k = 0; k < cfg.inflight; k++) issue();
    if (conn.sock) conn.sock.uncork();
  };

  await sleepUntilWall(epoch);
  for (const { conn, index } of clients) startClient(conn, index);
  let last = 0;
  const prog = progress(cfg, () => {
    const d = c.responses - last;
    last = c.responses;
    return `[echo p${pi}] ${d} responses/s, open ${CONNS.size}, measured ${c.requests}`;
  });
  const win = new Window();
  await sleepUntilWall(epoch + cfg.warmup * 1000);
  win.start();
  measuring = true;
  await sleepUntilWall(epoch + (cfg.warmup + cfg.duration) * 1000);
  measuring = false;
  win.stop();
  stopping = true;
  // drain what is in flight (bounded by the request timeout)
  const drainUntil = performance.now() + cfg.timeout * 1000 + 500;
  while (performance.now() < drainUntil) {
    let n = 0;
    for (const { conn } of clients) n += conn.pending.size;
    if (!n) break;
    await sleep(5);
  }
  clearInterval(prog);
  clearInterval(sweep);
  await closeAll(clients);
  return workerResult(stats, win);
}

// ---------------------------------------------------------------- idle

async function idleWorker(cfg, pi, np, hooks) {
  const stats = newStats();
  stats.counters.dropped = 0;
  stats.counters.open_at_end = 0;
  const t0 = performance.now();
  let holding = false;
  const setup = async (conn) => {
    conn.onClose = () => {
      stats.counters.dropped++;
      if (!holding) example(stats, 'dropped during the connect phase');
    };
  };
  const conns = await connectAll(cfg, stats, myIndices(cfg.clients, pi, np), cfg['connect-rate'] / np, setup);
  const connectSeconds = (performance.now() - t0) / 1000;
  const prog = progress(cfg, () => `[idle p${pi}] open ${CONNS.size}, dropped ${stats.counters.dropped}`);
  const epoch = await hooks.barrier('ready');
  await sleepUntilWall(epoch);
  holding = true;
  const win = new Window();
  win.start();
  await sleepUntilWall(epoch + cfg.duration * 1000);
  win.stop();
  for (const { conn } of conns) if (conn.state === 'working') stats.counters.open_at_end++;
  clearInterval(prog);
  for (const { conn } of conns) conn.onClose = null;
  await closeAll(conns);
  return workerResult(stats, win, { connect_seconds: connectSeconds });
}

// ---------------------------------------------------------------- broadcast

async function broadcastWorker(cfg, pi, np, hooks) {
  const stats = newStats();
  Object.assign(stats.counters, {
    members_joined: 0,
    join_failures: 0,
    sends: 0, // sends whose sent_at is inside the window
    sends_total: 0,
    send_ok: 0,
    send_errors: 0,
    send_timeouts: 0,
    pushes_total: 0,
    pushes_received: 0, // distinct in-window pushes
    duplicates: 0,
    reordered: 0,
    stray: 0,
    other_pushes: 0,
    own_push_first: 0, // a sender got the onChat of its own message before the send response
    own_response_first: 0, // ... or the response first (or never the push)
  });
  const c = stats.counters;
  const pushLat = (stats.hists.push = new Hist());
  const sendLat = (stats.hists.send = new Hist());
  const sweep = startTimeoutSweep(cfg);
  const room = cfg.room;
  const S = cfg.senders;
  const winStartNs = cfg.warmup * 1e9;
  const winEndNs = (cfg.warmup + cfg.duration) * 1e9;
  let epoch = null;
  let lastPush = performance.now();

  const onPush = (member) => (route, body) => {
    c.pushes_total++;
    lastPush = performance.now();
    if (route !== cfg['push-route']) {
      c.other_pushes++;
      return;
    }
    if (epoch === null) {
      c.stray++;
      return;
    }
    const nowNs = (nowWall() - epoch) * 1e6;
    let m = null;
    try {
      m = JSON.parse(body.toString('utf8'));
    } catch (e) {
      m = null;
    }
    let ct = null;
    try {
      ct = m && typeof m.content === 'string' ? JSON.parse(m.content) : null;
    } catch (e) {
      ct = null;
    }
    if (!ct || !Number.isInteger(ct.sender) || !Number.isInteger(ct.seq) || typeof ct.sent_at_ns !== 'number' ||
        ct.sender < 0 || ct.sender >= S) {
      c.stray++;
      example(stats, 'stray push: ' + body.toString('utf8'));
      return;
    }
    if (ct.sender === member.index && member.sendState && member.sendState.get(ct.seq) === 0) {
      member.sendState.set(ct.seq, 1); // own push before the send response
    }
    if (ct.sent_at_ns < winStartNs || ct.sent_at_ns >= winEndNs) return; // warm-up or after the window
    let t = member.track[ct.sender];
    if (!t) t = member.track[ct.sender] = { seen: new Set(), hi: 0 };
    if (t.seen.has(ct.seq)) {
      c.duplicates++;
      return;
    }
    t.seen.add(ct.seq);
    c.pushes_received++;
    if (ct.seq < t.hi) c.reordered++;
    else t.hi = ct.seq;
    pushLat.record((nowNs - ct.sent_at_ns) / 100);
  };

  const uidPrefix = cfg['entry-uid-prefix'];
  const members = [];
  const setup = async (conn, i) => {
    const member = { index: i, conn, track: [] };
    conn.onPush = onPush(member);
    try {
      const e = await conn.call(cfg['entry-route'], { uid: uidPrefix + i, rid: room });
      if (!e || e.code !== 200) {
        c.entry_failures++;
        example(stats, 'entry: ' + JSON.stringify(e));
        return;
      }
      const j = await conn.call(cfg['join-route'], { rid: room });
      if (!j || j.code !== 200) {
        c.join_failures++;
        example(stats, 'join: ' + JSON.stringify(j).slice(0, 200));
        return;
      }
      c.members_joined++;
      members.push(member);
    } catch (e) {
      c.join_failures++;
      example(stats, 'entry/join: ' + e.message);
    }
  };
  const conns = await connectAll(cfg, stats, myIndices(cfg.members, pi, np), cfg['connect-rate'] / np, setup);
  epoch = await hooks.barrier('ready');

  const endMs = (cfg.warmup + cfg.duration) * 1000;
  const periodMs = 1000 / cfg.rate;
  const senders = members.filter((m) => m.index < S);
  let sendsOpen = 0;
  const runSender = (member) =>
    new Promise((resolve) => {
      const i = member.index;
      member.sendState = new Map(); // seq -> 0 awaiting response, 1 own push already seen
      const offset = (i / S) * periodMs; // senders staggered within one period
      let k = 0;
      const tick = () => {
        if (member.conn.state !== 'working') return resolve();
        const rel = nowWall() - epoch;
        while (offset + k * periodMs <= rel) {
          if (offset + k * periodMs >= endMs) return resolve();
          k++;
          const sentAtNs = Math.round((nowWall() - epoch) * 1e6);
          const inWindow = sentAtNs >= winStartNs && sentAtNs < winEndNs;
          c.sends_total++;
          if (inWindow) c.sends++;
          sendsOpen++;
          const seq = k;
          member.sendState.set(seq, 0);
          // content is a string: the example game's typed chat route takes a string
          const body = JSON.stringify({ rid: room, content: JSON.stringify({ sender: i, seq: k, sent_at_ns: sentAtNs }) });
          member.conn.request(cfg['send-route'], body, (err, resp, entry) => {
            sendsOpen--;
            if (member.sendState.get(seq) === 1) c.own_push_first++;
            else if (!err) c.own_response_first++;
            member.sendState.delete(seq);
            if (err === 'timeout') return void c.send_timeouts++;
            if (err) return;
            let r = null;
            try {
              r = JSON.parse(resp.toString('utf8'));
            } catch (e) {
              r = null;
            }
            if (r && r.code === 200) c.send_ok++;
            else {
              c.send_errors++;
              example(stats, 'send: ' + resp.toString('utf8'));
            }
            if (inWindow) sendLat.recordMs(performance.now() - entry.t0);
          });
        }
        const next = offset + k * periodMs;
        if (next >= endMs) return resolve();
        setTimeout(tick, Math.max(0, next - (nowWall() - epoch)));
      };
      tick();
    });

  let lastPushes = 0;
  const prog = progress(cfg, () => {
    const d = c.pushes_total - lastPushes;
    lastPushes = c.pushes_total;
    return `[broadcast p${pi}] ${d} pushes/s, sends ${c.sends_total}, open ${CONNS.size}`;
  });
  await sleepUntilWall(epoch);
  const sending = Promise.all(senders.map(runSender));
  const win = new Window();
  await sleepUntilWall(epoch + cfg.warmup * 1000);
  win.start();
  await sleepUntilWall(epoch + endMs);
  win.stop();
  await sending;
  const drainUntil = performance.now() + cfg.timeout * 1000 + 500;
  while (sendsOpen > 0 && performance.now() < drainUntil) await sleep(5);
  // every process has its send responses; now wait until pushes stop arriving
  await hooks.barrier('sent');
  const quietUntil = performance.now() + cfg.timeout * 1000;
  while (performance.now() - lastPush < 1000 && performance.now() < quietUntil) await sleep(50);
  clearInterval(prog);
  clearInterval(sweep);
  await closeAll(conns);
  return workerResult(stats, win);
}

const WORKERS = { echo: echoWorker, idle: idleWorker, broadcast: broadcastWorker };

// ---------------------------------------------------------------- processes

function barrierValue(name, np) {
  // 'ready': the common start (wall ms); leave time for the message to reach every worker
  if (name === 'ready') return nowWall() + (np > 1 ? 100 : 20);
  return null;
}

function runLocal(cfg) {
  const hooks = { barrier: async (name) => barrierValue(name, 1) };
  return WORKERS[cfg.mode](cfg, 0, 1, hooks).then((r) => [r]);
}

function runForked(cfg) {
  const np = cfg.procs;
  return new Promise((resolve, reject) => {
    const workers = [];
    const results = new Array(np);
    const arrived = new Map();
    let done = 0;
    let failed = false;
    const fail = (e) => {
      if (failed) return;
      failed = true;
      for (const w of workers) w.kill('SIGKILL');
      reject(e);
    };
    for (let pi = 0; pi < np; pi++) {
      const w = fork(__filename, [], { env: { ...process.env, LOADGEN_WORKER: '1' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      workers.push(w);
      w.on('message', (m) => {
        if (m.evt === 'barrier') {
          const n = (arrived.get(m.name) || 0) + 1;
          arrived.set(m.name, n);
          if (n === np) {
            const value = barrierValue(m.name, np);
            for (const x of workers) x.send({ cmd: 'barrier', name: m.name, value });
          }
        } else if (m.evt === 'result') {
          results[pi] = m.result;
        } else if (m.evt === 'error') {
          fail(new Error('worker ' + pi + ': ' + m.error));
        }
      });
      // resolve once every worker has reported and exited (no process is left behind)
      w.on('exit', (code) => {
        if (results[pi] === undefined) fail(new Error('worker ' + pi + ' exited with ' + code));
        else if (++done === np) resolve(results);
      });
      w.send({ cmd: 'run', cfg, pi, np });
    }
  });
}

function workerMain() {
  const waiting = new Map();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m) => {
    if (m.cmd === 'barrier') {
      const r = waiting.get(m.name);
      waiting.delete(m.name);
      if (r) r(m.value);
    } else if (m.cmd === 'run') {
      const hooks = {
        barrier: (name) =>
          new Promise((res) => {
            waiting.set(name, res);
            process.send({ evt: 'barrier', name });
          }),
      };
      WORKERS[m.cfg.mode](m.cfg, m.pi, m.np, hooks).then(
        (result) => process.send({ evt: 'result', result }, () => process.exit(0)),
        (e) => process.send({ evt: 'error', error: String((e && e.stack) || e) }, () => process.exit(1)),
      );
    }
  });
}

// ---------------------------------------------------------------- merge and report

function merge(results) {
  const counters = {};
  const hists = {};
  const examples = [];
  for (const r of results) {
    for (const [k, v] of Object.entries(r.counters)) counters[k] = (counters[k] || 0) + v;
    for (const [k, j] of Object.entries(r.hists)) (hists[k] || (hists[k] = new Hist())).merge(j);
    for (const e of r.examples) if (examples.length < MAX_EXAMPLES) examples.push(e);
  }
  const seconds = results.reduce((a, r) => a + r.window.seconds, 0) / results.length;
  const cpuPerProc = results.map((r) => round(r.window.cpu_seconds / r.window.seconds, 3));
  return {
    counters,
    hists,
    examples,
    seconds,
    loadgen_cpu: round(results.reduce((a, r) => a + r.window.cpu_seconds / r.window.seconds, 0), 3),
    loadgen_cpu_per_proc: cpuPerProc,
    loadgen_elu_per_proc: results.map((r) => round(r.window.elu, 3)),
    loadgen_cpu_system: round(results.reduce((a, r) => a + r.window.sys_seconds / r.window.seconds, 0), 3),
  };
}

function round(x, d) {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function report(cfg, results) {
  const m = merge(results);
  const c = m.counters;
  const hs = m.hists.handshake;
  const common = {
    mode: cfg.mode,
    transport: cfg.transport,
    host: cfg.host,
    port: cfg.port,
    procs: cfg.procs,
  };
  const tail = {
    handshake_ms_p50: round(hs.quantile(0.5) / 1e4, 3),
    handshake_ms_p99: round(hs.quantile(0.99) / 1e4, 3),
    loadgen_cpu: m.loadgen_cpu,
    loadgen_cpu_per_proc: m.loadgen_cpu_per_proc,
    loadgen_cpu_system: m.loadgen_cpu_system,
    loadgen_elu_per_proc: m.loadgen_elu_per_proc,
    counters: c,
    examples: m.examples,
  };
  const hist = (name) => (cfg.histogram ? { [name]: m.hists[name].toJSON() } : {});
  if (cfg.mode === 'echo') {
    const lat = m.hists.latency;
    return {
      ...common,
      route: cfg.route,
      entry_route: cfg['entry-route'],
      clients: cfg.clients,
      inflight: cfg.inflight,
      body_bytes: cfg['body-bytes'],
      warmup: cfg.warmup,
      duration: cfg.duration,
      connected: c.connected,
      connect_failures: c.connect_failures,
      entry_failures: c.entry_failures,
      requests: c.requests,
      measured_s: round(m.seconds, 4),
      rate: round(c.requests / m.seconds, 1),
      ...lat.summaryMs(''),
      mismatches: c.mismatches,
      errors: c.errors,
      timeouts: c.timeouts,
      closed: c.closed,
      kicks: c.kicks,
      body_bytes_differ: c.body_bytes_differ,
      ...tail,
      ...hist('latency'),
    };
  }
  if (cfg.mode === 'idle') {
    return {
      ...common,
      clients: cfg.clients,
      duration: cfg.duration,
      connected: c.connected,
      dropped: c.dropped,
      open_at_end: c.open_at_end,
      connect_failures: c.connect_failures,
      connect_s: round(Math.max(...results.map((r) => r.connect_seconds)), 3),
      handshake_ms_max: round(hs.max / 1e4, 3),
      heartbeats_sent: c.heartbeats_sent,
      heartbeats_received: c.heartbeats_received,
      kicks: c.kicks,
      ...tail,
      ...hist('handshake'),
    };
  }
  const expected = c.sends * cfg.members;
  return {
    ...common,
    room: cfg.room,
    members: cfg.members,
    members_joined: c.members_joined,
    senders: cfg.senders,
    rate_per_sender: cfg.rate,
    warmup: cfg.warmup,
    duration: cfg.duration,
    measured_s: round(m.seconds, 4),
    sends: c.sends,
    send_ok: c.send_ok,
    send_errors: c.send_errors,
    send_timeouts: c.send_timeouts,
    pushes_expected: expected,
    pushes_received: c.pushes_received,
    missing: expected - c.pushes_received,
    duplicates: c.duplicates,
    reordered: c.reordered,
    stray: c.stray,
    own_push_first: c.own_push_first,
    own_response_first: c.own_response_first,
    push_rate: round(c.pushes_received / cfg.duration, 1),
    expected_push_rate: round((cfg.senders * cfg.rate * cfg.members), 1),
    ...m.hists.push.summaryMs('push_'),
    ...m.hists.send.summaryMs('send_'),
    connected: c.connected,
    connect_failures: c.connect_failures,
    closed: c.closed,
    kicks: c.kicks,
    ...tail,
    ...hist('push'),
  };
}

async function main() {
  const cfg = parseArgs(process.argv.slice(2));
  let results;
  try {
    results = cfg.procs > 1 ? await runForked(cfg) : await runLocal(cfg);
  } catch (e) {
    process.stderr.write('loadgen: ' + ((e && e.stack) || e) + '\n');
    process.exit(1);
  }
  process.stdout.write(JSON.stringify(report(cfg, results)) + '\n', () => process.exit(0));
}

if (process.env.LOADGEN_WORKER === '1') workerMain();
else if (require.main === module) main();

module.exports = { Conn, parseArgs, deepEqual };
