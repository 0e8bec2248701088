// A plain ShareDB server: the default in-memory backend (ShareDB's MemoryDB and in-process
// pub/sub), bridged to `ws` with @teamwork/websocket-json-stream as ShareDB's docs and
// examples do. No extra keepalive: ShareDB itself sends nothing on an idle connection.
//
// usage: node sharedb-server.mjs [PORT]   (0 or none: any free port) -> prints `listening PORT`
import http from 'node:http';
import ShareDB from 'sharedb';
import { WebSocketServer } from 'ws';
import WebSocketJSONStream from '@teamwork/websocket-json-stream';

// The harness starts us with --expose-gc and sends SIGUSR2 to get a full GC before it reads
// our RSS a second time (RSS of a garbage-collected heap includes garbage until a GC).
process.on('SIGUSR2', () => globalThis.gc?.());

const port = Number(process.argv[2] ?? 0);
const backend = new ShareDB();
const server = http.createServer();
const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  backend.listen(new WebSocketJSONStream(ws));
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
