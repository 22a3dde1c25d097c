// A pomelo client built from npm pinus-protocol + pomelo-protobuf, for the interop tests:
//   node client.js tcp|ws HOST PORT UID RID
// Handshakes asking for protos (sys.protoVersion 0), takes the protos and the route
// dictionary from the reply, then entry / join / send (a protobuf body) and waits for its
// own onChat push (protobuf). Prints one JSON line with what it saw; exits 0 on success.
'use strict';
const net = require('net');
const WebSocket = require('ws');
const { Package, Message } = require('pinus-protocol');
const protobuf = require('pomelo-protobuf');

const [kind, host, port, uid, rid] = process.argv.slice(2);
const result = { kind };
let dict = {};
let abbrs = {};
let serverProtos = {};
let clientProtos = {};
let reqId = 0;
const callbacks = {};
const routes = {};
let send;

const timer = setTimeout(() => finish(1, 'timed out'), 15000);

function finish(code, error) {
  clearTimeout(timer);
  if (error) result.error = error;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

function encodeBody(route, msg) {
  if (clientProtos[route]) return protobuf.encode(route, msg);
  return Buffer.from(JSON.stringify(msg), 'utf8');
}

function decodeBody(route, body) {
  if (serverProtos[route]) return protobuf.decode(route, body);
  return JSON.parse(body.toString('utf8'));
}

function request(route, msg) {
  return new Promise((resolve) => {
    reqId += 1;
    callbacks[reqId] = resolve;
    routes[reqId] = route;
    const body = encodeBody(route, msg);
    const code = dict[route];
    const data = Message.encode(reqId, Message.TYPE_REQUEST, code ? 1 : 0, code || route, body);
    send(Package.encode(Package.TYPE_DATA, data));
  });
}

let pushWaiter = null;

function onPackage(pkg) {
  if (pkg.type === Package.TYPE_HANDSHAKE) {
    const reply = JSON.parse(pkg.body.toString('utf8'));
    result.handshake = { code: reply.code, useProto: reply.sys && reply.sys.useProto,
      version: reply.sys && reply.sys.protos && reply.sys.protos.version };
    if (reply.code !== 200) return finish(1, 'handshake refused');
    const protos = reply.sys.protos || {};
    serverProtos = protos.server || {};
    clientProtos = protos.client || {};
    protobuf.init({ encoderProtos: clientProtos, decoderProtos: serverProtos });
    if (reply.sys.useDict && reply.sys.dict) {
      dict = reply.sys.dict;
      for (const route in dict) abbrs[dict[route]] = route;
    }
    send(Package.encode(Package.TYPE_HANDSHAKE_ACK));
    session().catch((err) => finish(1, String(err && err.stack || err)));
  } else if (pkg.type === Package.TYPE_HEARTBEAT) {
    send(Package.encode(Package.TYPE_HEARTBEAT));
  } else if (pkg.type === Package.TYPE_DATA) {
    const msg = Message.decode(pkg.body);
    if (msg.type === Message.TYPE_RESPONSE) {
      const route = routes[msg.id];
      const cb = callbacks[msg.id];
      delete callbacks[msg.id];
      if (cb) cb(decodeBody(route, msg.body));
    } else if (msg.type === Message.TYPE_PUSH) {
      const route = msg.compressRoute ? abbrs[msg.route] : msg.route;
      const body = decodeBody(route, msg.body);
      if (route === 'onChat' && pushWaiter) {
        result.pushHex = msg.body.toString('hex');
        result.pushRouteCompressed = !!msg.compressRoute;
        pushWaiter(body);
      }
    }
  } else if (pkg.type === Package.TYPE_KICK) {
    finish(1, 'kicked: ' + pkg.body);
  }
}

async function session() {
  result.entry = await request('connector.entryHandler.entry', { uid, rid });
  result.join = await request('chat.chatHandler.join', { rid });
  const pushed = new Promise((resolve) => { pushWaiter = resolve; });
  result.sendBodyHex = protobuf.encode('chat.chatHandler.send', { rid, content: 'héllo ' + kind })
    .toString('hex');
  result.send = await request('chat.chatHandler.send', { rid, content: 'héllo ' + kind });
  result.push = await pushed;
  finish(0);
}

function handshake() {
  const hs = { sys: { type: 'pinus-protocol-node', version: '1.7.4', rsa: {}, protoVersion: 0 },
    user: {} };
  send(Package.encode(Package.TYPE_HANDSHAKE, Buffer.from(JSON.stringify(hs))));
}

function onPackages(decoded) {
  for (const pkg of Array.isArray(decoded) ? decoded : [decoded]) onPackage(pkg);
}

if (kind === 'ws') {
  const ws = new WebSocket('ws://' + host + ':' + port + '/');
  ws.binaryType = 'nodebuffer';
  send = (data) => ws.send(data);
  ws.on('open', handshake);
  ws.on('message', (data) => onPackages(Package.decode(data)));
  ws.on('error', (err) => finish(1, 'ws error: ' + err.message));
  ws.on('close', () => finish(1, 'closed'));
} else {
  const socket = net.connect(Number(port), host, handshake);
  let pending = Buffer.alloc(0);
  send = (data) => socket.write(data);
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const size = (pending[1] << 16) | (pending[2] << 8) | pending[3];
      if (pending.length < 4 + size) break;
      onPackages(Package.decode(pending.subarray(0, 4 + size)));
      pending = pending.subarray(4 + size);
    }
  });
  socket.on('error', (err) => finish(1, 'tcp error: ' + err.message));
  socket.on('close', () => finish(1, 'closed'));
}
