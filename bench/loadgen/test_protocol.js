'use strict';
// Checks protocol.js against the test vectors of PROTOCOL.md section 11
// (generated with pinus-protocol 1.7.4) and the histogram's error bound.
// Run: node test_protocol.js   (or npm test)
const assert = require('assert');
const P = require('./protocol');
const { Hist } = require('./hist');

const hex = (b) => Buffer.from(b).toString('hex');
const utf8 = (s) => Buffer.from(s, 'utf8');
const msg = (type, id, compress, route, body) => {
  // message bytes only: strip the 4-byte package header
  const r = route == null ? null : compress ? { flag: 1, bytes: Buffer.from([route >> 8, route & 255]) } : P.encodeRoute(route);
  return P.encodeDataPackage(type, id, r, body).subarray(4);
};

const cases = [
  [1, P.encodePackage(P.PKG_HANDSHAKE, utf8('{"sys":{"type":"socket","version":"0.0.1","rsa":{}},"user":{}}')),
    '0100003e7b22737973223a7b2274797065223a22736f636b6574222c2276657273696f6e223a22302e302e31222c22727361223a7b7d7d2c2275736572223a7b7d7d'],
  [3, P.ACK_PACKAGE, '02000000'],
  [4, P.HEARTBEAT_PACKAGE, '03000000'],
  [5, P.encodePackage(P.PKG_KICK, utf8('{"reason":"kick"}')), '050000117b22726561736f6e223a226b69636b227d'],
  [6, msg(0, 1, false, 'connector.entryHandler.entry', utf8('{"uid":"u1"}')),
    '00011c636f6e6e6563746f722e656e74727948616e646c65722e656e7472797b22756964223a227531227d'],
  [7, P.encodeDataPackage(0, 1, P.encodeRoute('connector.entryHandler.entry'), '{"uid":"u1"}'),
    '0400002b00011c636f6e6e6563746f722e656e74727948616e646c65722e656e7472797b22756964223a227531227d'],
  [8, msg(0, 300, true, 3, utf8('{}')), '01ac0200037b7d'],
  [9, msg(0, 2097152, true, 258, utf8('{}')), '018080800101027b7d'],
  [10, msg(1, 0, false, 'chat.chatHandler.send', utf8('{"rid":"r","content":"hi"}')),
    '0215636861742e6368617448616e646c65722e73656e647b22726964223a2272222c22636f6e74656e74223a226869227d'],
  [11, msg(2, 1, false, null, utf8('{"code":200}')), '04017b22636f6465223a3230307d'],
  [12, msg(2, 128, false, null, utf8('{"code":500}')), '0480017b22636f6465223a3530307d'],
  [13, msg(3, 0, true, 7, utf8('{"content":"hi"}')), '0700077b22636f6e74656e74223a226869227d'],
  [14, msg(3, 0, false, 'onChat', utf8('{"content":"hi"}')), '06066f6e436861747b22636f6e74656e74223a226869227d'],
  [16, msg(0, 2, false, 'é.b.c', utf8('{}')), '000206c3a92e622e637b7d'],
];
for (const [n, got, want] of cases) assert.strictEqual(hex(got), want, 'vector ' + n);

// dictionary compression picks the code
assert.strictEqual(hex(P.encodeRoute('onChat', { onChat: 7 }).bytes), '0007');

// decoding
let m = P.decodeMessage(Buffer.from('01ac0200037b7d', 'hex'));
assert.deepStrictEqual([m.type, m.id, m.compressed, m.route, m.body.toString()], [0, 300, true, 3, '{}']);
m = P.decodeMessage(Buffer.from('018080800101027b7d', 'hex'));
assert.deepStrictEqual([m.id, m.route], [2097152, 258]);
m = P.decodeMessage(Buffer.from('100505612e622e637b7d', 'hex')); // vector 15, gzip bit
assert.deepStrictEqual([m.type, m.id, m.route, m.gzip, m.body.toString()], [0, 5, 'a.b.c', true, '{}']);
m = P.decodeMessage(Buffer.from('06066f6e436861747b22636f6e74656e74223a226869227d', 'hex'));
assert.deepStrictEqual([m.type, m.route, m.body.toString()], [3, 'onChat', '{"content":"hi"}']);
m = P.decodeMessage(Buffer.from('0480017b22636f6465223a3530307d', 'hex'));
assert.deepStrictEqual([m.type, m.id, m.route], [2, 128, null]);
const big = P.decodeMessage(msg(2, P.MAX_ID, false, null, utf8('{}')));
assert.strictEqual(big.id, P.MAX_ID);
assert.throws(() => msg(2, P.MAX_ID + 1, false, null, utf8('{}')));
assert.throws(() => P.encodeRoute('x'.repeat(256)));
assert.throws(() => P.decodeMessage(Buffer.from('04808080808001', 'hex'))); // 6-byte varint

// stream reassembly: byte by byte, and several packages per chunk
const stream = Buffer.concat([P.HEARTBEAT_PACKAGE, P.encodeDataPackage(2, 9, null, '{"a":1}'), P.ACK_PACKAGE]);
for (const step of [1, 3, stream.length]) {
  const seen = [];
  const r = new P.PackageReader((t, b) => seen.push(t + ':' + b.toString('hex')));
  for (let i = 0; i < stream.length; i += step) r.feed(stream.subarray(i, i + step));
  assert.deepStrictEqual(seen, ['3:', '4:' + hex(msg(2, 9, false, null, utf8('{"a":1}'))), '2:']);
}

// histogram: relative error of the reported bucket midpoint <= 0.4 % (plus 0.05 us absolute)
const h = new Hist();
for (let u = 0; u < 2e6; u += 7) {
  const k = Hist.index(u);
  const mid = Hist.mid(k);
  assert.ok(Math.abs(mid - u) <= Math.max(0.5, u * 0.004), `bucket of ${u}: mid ${mid}`);
  h.record(u);
}
const h2 = new Hist();
h2.merge(JSON.parse(JSON.stringify(h.toJSON())));
assert.strictEqual(h2.n, h.n);
assert.strictEqual(h2.quantile(0.99), h.quantile(0.99));
console.log('protocol and histogram tests passed');
