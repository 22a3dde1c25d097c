'use strict';
// Minimal Pomelo wire codec (see /work/shared/PROTOCOL.md, sections 2-4), written
// from the protocol description, independent of pinus-protocol / pomelo clients.
//
//   package  = type(1) | length(3, big-endian) | body
//   message  = flag(1) | id (varint, request/response only) | route | body
//   flag     = (msgType << 1) | routeCompressed      (bit 4 "gzip" is ignored)
//   route    = 2-byte big-endian dictionary code    (compressed)
//            | length(1) + UTF-8 bytes               (string)

const PKG_HANDSHAKE = 1;
const PKG_HANDSHAKE_ACK = 2;
const PKG_HEARTBEAT = 3;
const PKG_DATA = 4;
const PKG_KICK = 5;

const MSG_REQUEST = 0;
const MSG_NOTIFY = 1;
const MSG_RESPONSE = 2;
const MSG_PUSH = 3;

const MAX_ID = 0x7fffffff; // the reference encoder refuses ids >= 2^31
const MAX_PACKAGE_BODY = 0xffffff;

function encodePackage(type, body) {
  const len = body ? body.length : 0;
  if (len > MAX_PACKAGE_BODY) throw new RangeError('package body too long: ' + len);
  const b = Buffer.allocUnsafe(4 + len);
  b[0] = type;
  b[1] = (len >>> 16) & 0xff;
  b[2] = (len >>> 8) & 0xff;
  b[3] = len & 0xff;
  if (len) body.copy(b, 4);
  return b;
}

const ACK_PACKAGE = encodePackage(PKG_HANDSHAKE_ACK);
const HEARTBEAT_PACKAGE = encodePackage(PKG_HEARTBEAT);

function varintLength(id) {
  if (id < 0x80) return 1;
  if (id < 0x4000) return 2;
  if (id < 0x200000) return 3;
  if (id < 0x10000000) return 4;
  return 5;
}

function writeVarint(buf, off, id) {
  if (!(id >= 0 && id <= MAX_ID) || !Number.isInteger(id)) throw new RangeError('bad message id ' + id);
  while (id >= 0x80) {
    buf[off++] = (id & 0x7f) | 0x80;
    id >>>= 7;
  }
  buf[off++] = id;
  return off;
}

// A route prepared for encoding: {flag: 0|1, bytes: Buffer}.  Compressed when
// the server announced useDict and the route is in its dictionary.
function encodeRoute(route, dict) {
  if (dict && Object.prototype.hasOwnProperty.call(dict, route)) {
    const code = dict[route];
    if (Number.isInteger(code) && code > 0 && code <= 0xffff) {
      return { flag: 1, bytes: Buffer.from([code >>> 8, code & 0xff]) };
    }
  }
  const utf8 = Buffer.from(route, 'utf8');
  if (utf8.length > 255) throw new RangeError('route longer than 255 bytes: ' + route);
  const bytes = Buffer.allocUnsafe(1 + utf8.length);
  bytes[0] = utf8.length;
  utf8.copy(bytes, 1);
  return { flag: 0, bytes };
}

// One complete data package (header included) holding one message.
// route: result of encodeRoute (or null for responses); body: Buffer or string.
// Returns the buffer; the body starts at buf.length - bodyLength.
function encodeDataPackage(msgType, id, route, body) {
  const isString = typeof body === 'string';
  const bodyLen = body == null ? 0 : isString ? Buffer.byteLength(body, 'utf8') : body.length;
  const hasId = msgType === MSG_REQUEST || msgType === MSG_RESPONSE;
  const idLen = hasId ? varintLength(id) : 0;
  const routeLen = route ? route.bytes.length : 0;
  const msgLen = 1 + idLen + routeLen + bodyLen;
  if (msgLen > MAX_PACKAGE_BODY) throw new RangeError('message too long: ' + msgLen);
  const b = Buffer.allocUnsafe(4 + msgLen);
  b[0] = PKG_DATA;
  b[1] = (msgLen >>> 16) & 0xff;
  b[2] = (msgLen >>> 8) & 0xff;
  b[3] = msgLen & 0xff;
  b[4] = (msgType << 1) | (route ? route.flag : 0);
  let off = 5;
  if (hasId) off = writeVarint(b, off, id);
  if (route) {
    route.bytes.copy(b, off);
    off += routeLen;
  }
  if (bodyLen) {
    if (isString) b.write(body, off, bodyLen, 'utf8');
    else body.copy(b, off);
  }
  return b;
}

// Message bytes (no package header) -> {type, id, compressed, route, body, gzip}.
// route is a string, or the numeric dictionary code when compressed.
// Throws on truncated input or an id varint longer than 5 bytes.
function decodeMessage(buf) {
  const n = buf.length;
  if (n < 1) throw new Error('empty message');
  const flag = buf[0];
  const type = (flag >> 1) & 7;
  const compressed = (flag & 1) === 1;
  let off = 1;
  let id = 0;
  if (type === MSG_REQUEST || type === MSG_RESPONSE) {
    let mul = 1;
    let count = 0;
    let b;
    do {
      if (off >= n) throw new Error('truncated message id');
      if (++count > 5) throw new Error('message id varint longer than 5 bytes');
      b = buf[off++];
      id += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80);
  }
  let route = null;
  if (type === MSG_REQUEST || type === MSG_NOTIFY || type === MSG_PUSH) {
    if (compressed) {
      if (off + 2 > n) throw new Error('truncated route code');
      route = (buf[off] << 8) | buf[off + 1];
      off += 2;
    } else {
      if (off + 1 > n) throw new Error('truncated route length');
      const len = buf[off++];
      if (off + len > n) throw new Error('truncated route');
      route = buf.toString('utf8', off, off + len);
      off += len;
    }
  }
  return { type, id, compressed, route, body: buf.subarray(off), gzip: (flag & 0x10) !== 0 };
}

// Stream reassembly for TCP: feed() chunks, get onPackage(type, body) per complete package.
class PackageReader {
  constructor(onPackage) {
    this.onPackage = onPackage;
    this.rest = null;
    this.stopped = false;
  }

  feed(chunk) {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const n = buf.length;
    let off = 0;
    while (n - off >= 4 && !this.stopped) {
      const len = (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
      if (n - off - 4 < len) break;
      const type = buf[off];
      const body = buf.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      this.onPackage(type, body);
    }
    this.rest = off < n && !this.stopped ? buf.subarray(off) : null;
  }
}

// All packages of one complete buffer (a WebSocket message may carry several).
// Returns false if the buffer ends with an incomplete package.
function forEachPackage(buf, onPackage) {
  const n = buf.length;
  let off = 0;
  while (n - off >= 4) {
    const len = (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
    if (n - off - 4 < len) return false;
    const type = buf[off];
    const body = buf.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    onPackage(type, body);
  }
  return off === n;
}

module.exports = {
  PKG_HANDSHAKE,
  PKG_HANDSHAKE_ACK,
  PKG_HEARTBEAT,
  PKG_DATA,
  PKG_KICK,
  MSG_REQUEST,
  MSG_NOTIFY,
  MSG_RESPONSE,
  MSG_PUSH,
  MAX_ID,
  ACK_PACKAGE,
  HEARTBEAT_PACKAGE,
  encodePackage,
  encodeRoute,
  encodeDataPackage,
  decodeMessage,
  varintLength,
  writeVarint,
  PackageReader,
  forEachPackage,
};
