// Idle-connection cost of an anchor server, measured the way `montage bench --idle N` does:
// N WebSocket connections, 20 per document (connection i is on document i % ceil(N/20)),
// each one joined/subscribed and synced; then the server's RSS growth per connection and its
// CPU while all of them sit idle.
//
// usage: node idle.mjs sharedb|hocuspocus N [--idle-secs 30] [--concurrency 200]
// (use run.sh, which raises the open-file limit and Node's heap limit first)
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const PER_DOC = 20;
const PER_ADDRESS = 20_000; // one source address has only ~28,000 ephemeral ports

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node idle.mjs sharedb|hocuspocus N [--idle-secs 30] [--concurrency 200]');
  process.exit(2);
}

const args = process.argv.slice(2);
const kind = args[0];
const n = Number(args[1]);
if (!['sharedb', 'hocuspocus'].includes(kind) || !Number.isInteger(n) || n < 1) usage();
let idleSecs = 30;
let concurrency = 200;
for (let i = 2; i < args.length; i += 2) {
  const v = Number(args[i + 1]);
  if (!(v > 0)) usage(`bad value for ${args[i]}`);
  if (args[i] === '--idle-secs') idleSecs = v;
  else if (args[i] === '--concurrency') concurrency = Math.floor(v);
  else usage(`unknown option ${args[i]}`);
}

// Each connection costs one file descriptor here and one in the server, which inherits our limit.
const nofile = Number(readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+)/m)?.[1] ?? Infinity);
if (n + 100 > nofile) {
  usage(`N=${n} needs an open-file limit of at least ${n + 100} (it is ${nofile}; run.sh raises it where it may)`);
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** utime + stime of the process (all its threads), in seconds. */
function cpuSecs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(', ');

// ---- the server, as a child process -------------------------------------------------------

const serverFile = fileURLToPath(new URL(`./${kind}-server.mjs`, import.meta.url));
const child = spawn(process.execPath, ['--max-old-space-size=8192', '--expose-gc', serverFile, '0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const killChild = () => {
  try {
    child.kill('SIGKILL');
  } catch {}
};
process.on('exit', killChild);
child.on('exit', (code, sig) => {
  if (!finished) {
    console.error(`server exited early (code ${code}, signal ${sig})`);
    process.exit(1);
  }
});
let finished = false;
const port = await new Promise((resolve, reject) => {
  let buf = '';
  const t = setTimeout(() => reject(new Error('server did not print `listening PORT` in 30 s')), 30_000);
  child.stdout.on('data', (d) => {
    buf += d;
    const m = buf.match(/listening (\d+)/);
    if (m) {
      clearTimeout(t);
      resolve(Number(m[1]));
    }
  });
});
child.stdout.resume();
const pid = child.pid;
const url = `ws://127.0.0.1:${port}`;

// Client sockets bind round-robin in blocks of 20,000 to 127.0.0.1, 127.0.0.2, …
const localAddress = (i) => `127.0.0.${1 + Math.floor(i / PER_ADDRESS)}`;

// ---- clients ------------------------------------------------------------------------------

const clients = []; // whatever keeps each connection alive (and lets us check it at the end)
let events = { disconnects: 0 };

async function withRetry(what, f, tries = 5) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      if (attempt >= tries) throw new Error(`${what}: ${e?.message ?? e}`);
      await sleep(200 * 2 ** attempt);
    }
  }
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: timed out`)), ms))),
  ]).finally(() => clearTimeout(t));
}

let sharedb;
let hocus;
if (kind === 'sharedb') sharedb = (await import('sharedb/lib/client/index.js')).default;
else hocus = await import('@hocuspocus/provider');

/** Open connection `i` to document `docName`, fetch+subscribe it (creating it if `create`). */
async function openShareDB(i, docName, create) {
  const ws = await withRetry(`connection ${i}`, () =>
    withTimeout(
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { localAddress: localAddress(i) });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      }),
      30_000,
      'connect',
    ),
  );
  ws.on('error', () => {});
  const conn = new sharedb.Connection(ws);
  conn.on('state', (s) => {
    if (s !== 'connected' && s !== 'connecting' && !finished) events.disconnects++;
  });
  const doc = conn.get('docs', docName);
  await withTimeout(
    new Promise((resolve, reject) => doc.subscribe((e) => (e ? reject(e) : resolve()))),
    60_000,
    `subscribe ${i}`,
  );
  if (create && !doc.type) {
    await new Promise((resolve, reject) =>
      doc.create({ title: docName, body: '' }, (e) => (e ? reject(e) : resolve())),
    );
  }
  clients.push({ ok: () => conn.state === 'connected' && doc.subscribed && !!doc.type });
}

// A `ws` WebSocket class per source address, for HocuspocusProvider's WebSocketPolyfill
// (which it constructs as `new WebSocketPolyfill(url)`).
const boundWs = new Map();
function wsFrom(addr) {
  if (!boundWs.has(addr)) {
    boundWs.set(
      addr,
      class extends WebSocket {
        constructor(u, protocols) {
          super(u, protocols, { localAddress: addr });
        }
      },
    );
  }
  return boundWs.get(addr);
}

/** Open connection `i`: one HocuspocusProvider, with its own socket, syncing `docName`. */
async function openHocuspocus(i, docName) {
  // The provider retries failed connects itself (backoff from 1 s); we only bound the wait.
  let provider;
  await withTimeout(
    new Promise((resolve) => {
      provider = new hocus.HocuspocusProvider({
        url,
        name: docName,
        token: `idle${i}`,
        WebSocketPolyfill: wsFrom(localAddress(i)),
        onSynced: ({ state }) => state && resolve(),
        onDisconnect: () => {
          if (!finished) events.disconnects++;
        },
      });
    }),
    120_000,
    `connection ${i} (sync)`,
  );
  clients.push({ ok: () => provider.isSynced && provider.configuration.websocketProvider.status === 'connected' });
}

const open = kind === 'sharedb' ? openShareDB : openHocuspocus;

async function pool(items, limit, f) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      await f(item);
      if (clients.length % 500 === 0) process.stderr.write(`\ropened ${clients.length}/${n}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// ---- the measurement ----------------------------------------------------------------------

console.log(`${kind}: server pid ${pid} on ${url}; N=${n}, ${PER_DOC} per document, idle ${idleSecs} s`);
console.log(`load average at start: ${load()}`);

// Warm up: one connection, so runtime and allocator set-up are not counted.
await open(0, 'warm', true);
clients.length = 0;
await sleep(300);
/** A full GC in the server (its SIGUSR2 handler), then a moment for it to finish. */
async function serverGc() {
  child.kill('SIGUSR2');
  await sleep(2_000);
}
await serverGc();
const before = rssKiB(pid);

const docs = Math.ceil(n / PER_DOC);
const started = Date.now();
const idx = Array.from({ length: n }, (_, i) => i);
// The first connection of each document creates it; then the other 19.
await pool(idx.slice(0, docs), concurrency, (i) => open(i, `idle-${i % docs}`, true));
await pool(idx.slice(docs), concurrency, (i) => open(i, `idle-${i % docs}`, false));
process.stderr.write(`\ropened ${clients.length}/${n} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

// Let the joins' broadcasts settle before measuring.
await sleep(5_000);
const after = rssKiB(pid);
const perKiB = (after - before) / n;
console.log(
  `idle connections: ${n}  server RSS ${before} KiB -> ${after} KiB  ≈ ${perKiB.toFixed(2)} KiB = ${(
    (perKiB * 1024) /
    1000
  ).toFixed(1)} KB per connection`,
);
await serverGc();
const afterGc = rssKiB(pid);
const perGcKiB = (afterGc - before) / n;
console.log(
  `after a forced full GC in the server: RSS ${before} KiB -> ${afterGc} KiB  ≈ ${perGcKiB.toFixed(2)} KiB = ${(
    (perGcKiB * 1024) /
    1000
  ).toFixed(1)} KB per connection`,
);

const cpu0 = cpuSecs(pid);
const t0 = process.hrtime.bigint();
const self0 = process.cpuUsage();
await sleep(idleSecs * 1000);
const cpu1 = cpuSecs(pid);
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const self1 = process.cpuUsage(self0);
console.log(
  `server CPU while idle: ${(cpu1 - cpu0).toFixed(2)} s over ${wall.toFixed(1)} s = ${(
    ((cpu1 - cpu0) / wall) *
    100
  ).toFixed(2)} % of a core`,
);
const alive = clients.filter((c) => c.ok()).length;
console.log(
  `check: ${alive}/${n} connections still synced at the end, ${events.disconnects} disconnects after opening began; ` +
    `harness CPU while idle ${(((self1.user + self1.system) / 1e6 / wall) * 100).toFixed(1)} % of a core; ` +
    `server RSS at end ${rssKiB(pid)} KiB`,
);
console.log(`load average at end: ${load()}`);
finished = true;
killChild();
process.exit(alive === n ? 0 : 1);
