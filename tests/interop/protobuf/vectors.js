// Writes tests/vectors/protobuf.json: each case encoded and decoded by npm pomelo-protobuf 0.4.0.
// Run once (node vectors.js > ../../vectors/protobuf.json); the Python tests replay the file.
'use strict';
const crypto = require('crypto');
const protobuf = require('pomelo-protobuf');

const PROTOS = {
  'message Point': { 'required sInt32 x': 1, 'required sInt32 y': 2 },
  'area.scalars': {
    'required uInt32 u': 1, 'optional sInt32 s': 2, 'optional int32 i': 3,
    'optional float f': 4, 'optional double d': 5, 'optional string text': 6
  },
  'area.repeated': {
    'repeated uInt32 us': 1, 'repeated sInt32 ss': 2, 'repeated int32 is': 3,
    'repeated float fs': 4, 'repeated double ds': 5, 'repeated string texts': 6,
    'repeated Point points': 7
  },
  'area.nested': {
    'message Inner': { 'optional string name': 1, 'repeated Leaf leaves': 2,
      'message Leaf': { 'required uInt32 id': 1, 'optional string tag': 2 } },
    'required Inner inner': 1, 'optional Point at': 2, 'repeated Inner more': 3
  },
  'area.bigtags': { 'optional uInt32 small': 1, 'optional string big': 300, 'optional sInt32 huge': 100000 },
  'onChat': { 'required string rid': 1, 'required string from': 2, 'optional string content': 3 }
};

const CASES = [
  ['uInt32 zero', 'area.scalars', { u: 0 }],
  ['uInt32 one byte max', 'area.scalars', { u: 127 }],
  ['uInt32 two bytes', 'area.scalars', { u: 128 }],
  ['uInt32 300', 'area.scalars', { u: 300 }],
  ['uInt32 max 32-bit', 'area.scalars', { u: 4294967295 }],
  ['uInt32 beyond 32 bits (not truncated)', 'area.scalars', { u: 8589934592 }],
  ['sInt32 zigzag', 'area.scalars', { u: 1, s: -1 }],
  ['sInt32 positive', 'area.scalars', { u: 1, s: 1 }],
  ['sInt32 min', 'area.scalars', { u: 1, s: -2147483648 }],
  ['sInt32 max', 'area.scalars', { u: 1, s: 2147483647 }],
  ['int32 is zigzag too', 'area.scalars', { u: 1, i: -5 }],
  ['float', 'area.scalars', { u: 1, f: 1.5 }],
  ['float rounded to 32 bits', 'area.scalars', { u: 1, f: 0.1 }],
  ['float negative', 'area.scalars', { u: 1, f: -2.25e10 }],
  ['double', 'area.scalars', { u: 1, d: 0.1 }],
  ['double negative large', 'area.scalars', { u: 1, d: -1.7976931348623157e308 }],
  ['string ascii', 'area.scalars', { u: 1, text: 'hello' }],
  ['string empty', 'area.scalars', { u: 1, text: '' }],
  ['string two and three byte utf-8', 'area.scalars', { u: 1, text: 'héllo €' }],
  ['string astral (4-byte utf-8)', 'area.scalars', { u: 1, text: 'a\ud83d\ude00b' }],
  ['string of 200 bytes (two-byte length)', 'area.scalars', { u: 1, text: 'x'.repeat(200) }],
  ['every scalar', 'area.scalars', { u: 7, s: -300, i: 300, f: -0.5, d: 1e-300, text: 'all' }],
  ['keys in object order, not tag order', 'area.scalars', { text: 'first', d: 2.5, u: 3 }],
  ['unknown keys ignored', 'area.scalars', { u: 1, nope: 'ignored', extra: [1, 2] }],
  ['optional absent', 'area.scalars', { u: 9 }],
  ['repeated uInt32 packed with a count', 'area.repeated', { us: [1, 2, 300, 0] }],
  ['repeated sInt32 packed', 'area.repeated', { ss: [-1, 1, -64, 64] }],
  ['repeated int32 packed', 'area.repeated', { is: [-2, 2] }],
  ['repeated float packed', 'area.repeated', { fs: [1.5, -2.75, 1e20] }],
  ['repeated double packed', 'area.repeated', { ds: [0.1, -0.2, 1e100] }],
  ['repeated string unpacked', 'area.repeated', { texts: ['a', '', 'héllo'] }],
  ['repeated message unpacked', 'area.repeated', { points: [{ x: 1, y: -1 }, { x: -300, y: 300 }] }],
  ['repeated empty lists left out', 'area.repeated', { us: [], texts: [], points: [], ss: [5] }],
  ['repeated everything', 'area.repeated', {
    us: [5], ss: [-5], is: [6], fs: [0.5], ds: [0.25], texts: ['t'], points: [{ x: 0, y: 0 }] }],
  ['nested message', 'area.nested', { inner: { name: 'n' } }],
  ['nested message empty', 'area.nested', { inner: {} }],
  ['nested twice with a nested type of the nested message', 'area.nested', {
    inner: { name: 'deep', leaves: [{ id: 1, tag: 'a' }, { id: 2 }] } }],
  ['top-level message type', 'area.nested', { inner: {}, at: { x: 10, y: -10 } }],
  ['repeated nested messages', 'area.nested', {
    inner: { name: 'a' }, more: [{ name: 'b' }, { leaves: [{ id: 300 }] }] }],
  ['tags of two and three varint bytes', 'area.bigtags', { small: 1, big: 'b', huge: -1 }],
  ['the example game push', 'onChat', { rid: 'room-1', from: 'alice', content: 'hi there' }],
  ['the example game push without content', 'onChat', { rid: 'room-1', from: 'alice' }]
];

const parsed = protobuf.parse(PROTOS);
protobuf.init({ encoderProtos: parsed, decoderProtos: parsed });
const cases = CASES.map(([name, route, msg]) => {
  const bytes = protobuf.encode(route, msg);
  if (!bytes) throw new Error('npm encoder refused ' + name);
  const decoded = protobuf.decode(route, bytes);
  return { name, route, msg, hex: bytes.toString('hex'), decoded };
});

const CLIENT = { 'chat.chatHandler.send': { 'required string rid': 1, 'optional string content': 2 } };
const parsedClient = protobuf.parse(CLIENT);
const version = crypto.createHash('md5')
  .update(JSON.stringify(parsedClient) + JSON.stringify(parsed)).digest('base64');

process.stdout.write(JSON.stringify({
  description: 'pomelo-protobuf 0.4.0 (npm) encodings: each case is msg encoded on route with ' +
    'the server protos (hex) and those bytes decoded back (decoded); version is pomelo\'s ' +
    'protos version of (client, server); parsed is what pomelo-protobuf parse() returns.',
  generator: 'tests/interop/protobuf/vectors.js with npm pomelo-protobuf 0.4.0',
  protos: { server: PROTOS, client: CLIENT },
  parsed: { server: parsed, client: parsedClient },
  version,
  cases
}, null, 1) + '\n');
