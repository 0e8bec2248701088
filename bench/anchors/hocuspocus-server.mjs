// A plain Hocuspocus server: no extensions (so documents live only in memory), default
// configuration (60 s connection timeout, unloadImmediately) apart from `quiet`.
//
// usage: node hocuspocus-server.mjs [PORT]   (0 or none: any free port) -> prints `listening PORT`
import { Server } from '@hocuspocus/server';

// The harness starts us with --expose-gc and sends SIGUSR2 to get a full GC before it reads
// our RSS a second time (RSS of a garbage-collected heap includes garbage until a GC).
process.on('SIGUSR2', () => globalThis.gc?.());

const port = Number(process.argv[2] ?? 0);
const server = new Server({
  address: '127.0.0.1',
  port,
  quiet: true,
  async onListen({ port }) {
    console.log(`listening ${port}`);
  },
});
server.listen();
