// npm pomelo-protobuf 0.4.0 as a line-oriented codec for the interop tests.
// Each stdin line is a JSON request, answered by one stdout line:
//   {"op": "init", "protos": {...raw protos...}}        -> {"parsed": ..., "ok": true}
//   {"op": "encode", "route": r, "msg": {...}}          -> {"hex": "..."} (null when npm refuses)
//   {"op": "decode", "route": r, "hex": "..."}          -> {"msg": {...}} or {"error": "..."}
// With "build": "browser", encode and decode use the package's browser build
// (lib/client/protobuf.js, what pomelo's web client bundles) instead of the Node one.
'use strict';
const readline = require('readline');
const protobuf = require('pomelo-protobuf');
const browser = require('pomelo-protobuf/lib/client/protobuf');

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  const req = JSON.parse(line);
  let answer;
  try {
    if (req.op === 'init') {
      const parsed = protobuf.parse(req.protos);
      protobuf.init({ encoderProtos: parsed, decoderProtos: parsed });
      browser.init({ encoderProtos: parsed, decoderProtos: parsed });
      answer = { ok: true, parsed };
    } else if (req.op === 'encode') {
      const codec = req.build === 'browser' ? browser : protobuf;
      const bytes = codec.encode(req.route, req.msg);
      answer = { hex: bytes ? Buffer.from(bytes).toString('hex') : null };
    } else if (req.op === 'decode') {
      const codec = req.build === 'browser' ? browser : protobuf;
      const data = Buffer.from(req.hex, 'hex');
      answer = { msg: codec.decode(req.route, req.build === 'browser' ? new Uint8Array(data) : data) };
    } else {
      answer = { error: 'unknown op ' + req.op };
    }
  } catch (err) {
    answer = { error: String(err && err.message || err) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
});
