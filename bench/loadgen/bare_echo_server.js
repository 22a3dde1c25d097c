#!/usr/bin/env node
'use strict';
// The "bare Node echo" floor: a minimal Pomelo server with no framework.
//
//   node bare_echo_server.js [--port 3910] [--host 127.0.0.1] [--heartbeat 0] [--ws]
//
// Raw TCP by default; with --ws it serves WebSocket (binary messages, one
// package each) on --port instead.  Single process.
//   handshake          -> {"code":200,"sys":{"heartbeat":H}}  (no "heartbeat" key when H = 0)
//   handshake ack      -> heartbeat package if H > 0 (as pinus does)
//   heartbeat          -> heartbeat package, at once
//   request (type 0)   -> response (type 2) with the same id and the same body bytes
//   notify             -> ignored
// No route dictionary, no timeouts, no sessions.  A bad package type closes the connection.
const net = require('net');
const P = require('./protocol');

function parseArgs(argv) {
  const o = { port: 3910, host: '127.0.0.1', heartbeat: 0, ws: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ws') o.ws = true;
    else if (a === '--port') o.port = Number(argv[++i]);
    else if (a === '--host') o.host = argv[++i];
    else if (a === '--heartbeat') o.heartbeat = Number(argv[++i]);
    else if (a === '-h' || a === '--help') {
      process.stderr.write('usage: node bare_echo_server.js [--port P] [--host H] [--heartbeat S] [--ws]\n');
      process.exit(0);
    } else {
      process.stderr.write('unknown argument ' + a + '\n');
      process.exit(2);
    }
  }
  if (!Number.isInteger(o.port) || o.port <= 0 || !(o.heartbeat >= 0)) {
    process.stderr.write('bad --port or --heartbeat\n');
    process.exit(2);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const sys = opts.heartbeat > 0 ? { heartbeat: opts.heartbeat } : {};
const HANDSHAKE_REPLY = P.encodePackage(P.PKG_HANDSHAKE, Buffer.from(JSON.stringify({ code: 200, sys })));

// response package for a request message: 04 len3 | 04 | id varint | body
function response(id, body) {
  const idLen = P.varintLength(id);
  const msgLen = 1 + idLen + body.length;
  const b = Buffer.allocUnsafe(4 + msgLen);
  b[0] = P.PKG_DATA;
  b[1] = (msgLen >>> 16) & 0xff;
  b[2] = (msgLen >>> 8) & 0xff;
  b[3] = msgLen & 0xff;
  b[4] = P.MSG_RESPONSE << 1;
  const off = P.writeVarint(b, 5, id);
  body.copy(b, off);
  return b;
}

// Per-connection package handler; send(buf) writes one package, close() drops the peer.
function makeHandler(send, close) {
  let state = 0; // 0 = waiting for handshake, 1 = waiting for ack, 2 = working
  return (type, body) => {
    switch (type) {
      case P.PKG_HANDSHAKE:
        if (state === 0) {
          state = 1;
          send(HANDSHAKE_REPLY);
        }
        return;
      case P.PKG_HANDSHAKE_ACK:
        if (state === 1) {
          state = 2;
          if (opts.heartbeat > 0) send(P.HEARTBEAT_PACKAGE);
        }
        return;
      case P.PKG_HEARTBEAT:
        if (state === 2) send(P.HEARTBEAT_PACKAGE);
        return;
      case P.PKG_DATA: {
        if (state !== 2) return;
        let m;
        try {
          m = P.decodeMessage(body);
        } catch (e) {
          close();
          return;
        }
        if (m.type === P.MSG_REQUEST && m.id > 0) send(response(m.id, m.body));
        return;
      }
      default:
        close();
    }
  };
}

let server;
if (opts.ws) {
  const { WebSocketServer } = require('ws');
  server = new WebSocketServer({ host: opts.host, port: opts.port, perMessageDeflate: false, clientTracking: false });
  server.on('connection', (ws) => {
    const handle = makeHandler((b) => ws.send(b, { binary: true }), () => ws.terminate());
    ws.on('message', (data) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (!P.forEachPackage(buf, handle)) ws.terminate();
    });
    ws.on('error', () => {});
  });
  server.on('listening', () => process.stderr.write(`bare echo: ws on ${opts.host}:${opts.port}\n`));
} else {
  server = net.createServer((sock) => {
    sock.setNoDelay(true);
    let closed = false;
    const reader = new P.PackageReader(
      makeHandler(
        (b) => sock.write(b),
        () => {
          closed = true;
          reader.stopped = true;
          sock.destroy();
        },
      ),
    );
    sock.on('data', (chunk) => {
      sock.cork(); // all responses to one read go out in one write
      reader.feed(chunk);
      if (!closed) sock.uncork();
    });
    sock.on('error', () => {});
  });
  server.listen({ host: opts.host, port: opts.port, backlog: 4096 }, () =>
    process.stderr.write(`bare echo: tcp on ${opts.host}:${opts.port}\n`),
  );
}
server.on('error', (e) => {
  process.stderr.write('bare echo: ' + e.message + '\n');
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
