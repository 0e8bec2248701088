// A CommonJS app: the package's `require` half.
const assert = require("node:assert/strict");
const { MontageClient, OtError, apply, decodeOp, encodeOp, newDocument } = require("@montage/client");
const { binaryFrames, decodeClientFrame, encodeClientFrame } = require("@montage/client/binary");

const doc = newDocument();
const op = decodeOp([{ op: "set", path: ["title"], value: "packed" }]);
const { doc: next, inverse } = apply(doc, op);
assert.equal(next.title, "packed");
assert.deepEqual(apply(next, inverse).doc, doc);
assert.deepEqual(encodeOp(op), [{ op: "set", path: ["title"], value: "packed" }]);
assert.throws(() => apply(doc, decodeOp([{ op: "del", path: ["nope", 3] }])), OtError);

// Node 20 has no global WebSocket: a socket factory that records what would be opened.
const opened = [];
const socket = (url, protocols) => {
  opened.push({ url, protocols });
  return { readyState: 0, send() {}, close() {}, onopen: null, onmessage: null, onclose: null, onerror: null };
};
const c = new MontageClient({ url: "ws://127.0.0.1:9/v1/ws", token: "t", session: "s", socket, autoConnect: false });
assert.equal(c.connectionState, "offline");
assert.equal(c.doc, null);
assert.equal(opened.length, 0);
c.connect();
assert.deepEqual(opened, [{ url: "ws://127.0.0.1:9/v1/ws?token=t", protocols: ["montage.v1.json"] }]);
assert.equal(c.connectionState, "connecting");
c.disconnect();
// Binary frames (montage.v1.proto), from the `binary` entry point with the protobuf runtime.
const edit = { type: "op", session: "s", base: 1, seq: 2, ops: [{ op: "text", path: ["title"], pos: 0, ins: "é" }], rid: "r" };
assert.deepEqual(decodeClientFrame(encodeClientFrame(edit)), edit);
opened.length = 0;
new MontageClient({ url: "ws://127.0.0.1:9/v1/ws", token: "t", session: "s", socket, binary: binaryFrames }).disconnect();
assert.deepEqual(opened, [{ url: "ws://127.0.0.1:9/v1/ws?token=t", protocols: ["montage.v1.proto"] }]);
console.log("cjs ok");
// Node took the CommonJS half.
assert.match(require.resolve("@montage/client"), /\/dist\/cjs\/index\.js$/);
