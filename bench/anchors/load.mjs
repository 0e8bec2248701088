// Edit load through ShareDB and through Montage from one Node generator, the way `montage bench`
// loads Montage: S sessions (ShareDB: docs) × C clients, each client its own socket (and, on
// Montage, its own user), sending R edits a second (spread evenly over the period) at the newest
// version it knows, each edit setting `meta.c<client>` to its send time. Reported per server:
// edits/s sent and acked, ack latency (send -> ack) and broadcast latency (send -> arrival at the
// session's other clients), the server's CPU over the measured window (utime+stime from
// /proc/<pid>/stat) as % of a core and per acked edit, and its peak RSS.
//
// The server is a child pinned to one core (`taskset -c 1`), this generator to another (core 0).
//
// usage: node load.mjs [--server sharedb|montage|both] [--sessions 100] [--clients 5] [--rate 5]
//          [--duration 10] [--warmup 3] [--montage-bin PATH] [--cpus GEN,SERVER | --no-pin]
//          [--compose] [--sharedb-client real|raw]
// (or bench/anchors/run.sh load …, which also raises the open-file limit)
import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { loadavg, tmpdir, homedir, cpus } from 'node:os';
import { join as pathJoin } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const USAGE =
  'usage: node load.mjs [--server sharedb|montage|both] [--sessions 100] [--clients 5] [--rate 5]\n' +
  '         [--duration 10] [--warmup 3] [--montage-bin PATH] [--cpus GEN,SERVER | --no-pin] [--compose]\n' +
  '         [--sharedb-client real|raw]';

function usage(msg) {
  if (msg) console.error(msg);
  console.error(USAGE);
  process.exit(2);
}

const opt = {
  server: 'both',
  sessions: 100,
  clients: 5,
  rate: 5,
  duration: 10,
  warmup: 3,
  montageBin: pathJoin(
    process.env.CARGO_TARGET_DIR || pathJoin(homedir(), '.cache/montage/target'),
    'release/montage',
  ),
  cpus: [0, 1],
  pin: true,
  compose: false,
  sharedbClient: 'real',
};
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const val = () => {
      if (i + 1 >= args.length) usage(`${a} needs a value`);
      return args[++i];
    };
    const num = (min) => {
      const v = Number(val());
      if (!(v >= min)) usage(`bad value for ${a}`);
      return v;
    };
    if (a === '--server') opt.server = val();
    else if (a === '--sessions') opt.sessions = Math.floor(num(1));
    else if (a === '--clients') opt.clients = Math.floor(num(1));
    else if (a === '--rate') opt.rate = num(Number.MIN_VALUE);
    else if (a === '--duration') opt.duration = num(Number.MIN_VALUE);
    else if (a === '--warmup') opt.warmup = num(0);
    else if (a === '--montage-bin') opt.montageBin = val();
    else if (a === '--cpus') {
      opt.cpus = val().split(',').map(Number);
      if (opt.cpus.length !== 2 || !opt.cpus.every(Number.isInteger)) usage('--cpus GEN,SERVER');
    } else if (a === '--no-pin') opt.pin = false;
    else if (a === '--compose') opt.compose = true;
    else if (a === '--sharedb-client') {
      opt.sharedbClient = val();
      if (!['real', 'raw'].includes(opt.sharedbClient)) usage('--sharedb-client real|raw');
    }
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown option ${a}`);
  }
  if (!['sharedb', 'montage', 'both'].includes(opt.server)) usage('--server sharedb|montage|both');
}
const servers = opt.server === 'both' ? ['sharedb', 'montage'] : [opt.server];
if (servers.includes('montage') && !existsSync(opt.montageBin)) {
  usage(`no montage binary at ${opt.montageBin} (give --montage-bin, or set CARGO_TARGET_DIR)`);
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const load = () => loadavg().map((x) => x.toFixed(2)).join(', ');

/** utime + stime of the process (all its threads), in seconds. */
function cpuSecs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15
}

/** Peak RSS (VmHWM) in KiB. */
function peakRssKiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0);
  return Math.max(kib('VmHWM'), kib('VmRSS'));
}

// ---- pinning ------------------------------------------------------------------------------

const ncpu = cpus().length;
if (opt.pin && ncpu < 2) {
  console.error(`only ${ncpu} CPU: not pinning (the generator and the server share it)`);
  opt.pin = false;
}
if (opt.pin) {
  // -a: every thread of this process (libuv's pool, V8's helpers); threads made later inherit it.
  execFileSync('taskset', ['-a', '-p', '-c', String(opt.cpus[0]), String(process.pid)], { stdio: 'ignore' });
}

/** Spawns `cmd args` as the server child (pinned), resolves with [child, stdout text matcher]. */
function spawnServer(cmd, args, env, pattern) {
  const argv = opt.pin ? ['taskset', ['-c', String(opt.cpus[1]), cmd, ...args]] : [cmd, args];
  // taskset execs the command: the child's pid is the server's.
  const child = spawn(argv[0], argv[1], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const ready = new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`server did not print ${pattern} in 30 s`)), 30_000);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(pattern);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.once('exit', (code, sig) => reject(new Error(`server exited at start (code ${code}, signal ${sig})`)));
  });
  return { child, ready };
}

let current = null; // the running server child, killed on exit
process.on('exit', () => {
  try {
    current?.kill('SIGKILL');
  } catch {}
});

// ---- latency samples ----------------------------------------------------------------------

class Samples {
  constructor() {
    this.v = [];
  }
  add(us) {
    this.v.push(us);
  }
  line() {
    const n = this.v.length;
    if (!n) return 'no samples';
    const s = Float64Array.from(this.v).sort();
    const q = (p) => s[Math.min(n - 1, Math.max(0, Math.ceil(n * p) - 1))] / 1000;
    return `p50 ${q(0.5).toFixed(2)} ms  p99 ${q(0.99).toFixed(2)} ms  max ${(s[n - 1] / 1000).toFixed(2)} ms  (${n} samples)`;
  }
}

/** Counters of one run: everything from the start of the load; `win*` only in the window. */
function newStats() {
  return {
    measuring: false,
    sent: 0,
    acked: 0,
    winSent: 0,
    winAcked: 0,
    deliveries: 0,
    frames: 0,
    errors: 0,
    firstError: null,
    ack: new Samples(),
    bcast: new Samples(),
  };
}

let T0 = performance.now();
/** Microseconds since the generator's start (the send time carried in each edit). */
const nowUs = () => Math.round((performance.now() - T0) * 1000);

function countError(st, what) {
  st.errors++;
  if (!st.firstError) {
    st.firstError = what;
    console.error(`\nfirst error: ${what}`);
  }
}

function openSocket(url) {
  return new Promise((resolve, reject) => {
    // No permessage-deflate (neither server would use it; ShareDB's ws server declines it).
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function pool(items, limit, f) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await f(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Each client's edit timer: R a second, the clients' first sends spread over one period. */
function startTicking(clients, send) {
  const period = 1000 / opt.rate;
  const timers = [];
  for (const c of clients) {
    const offset = (period * (c.id % 97)) / 97; // as `montage bench` spreads them
    const t = setTimeout(() => {
      send(c);
      timers.push(setInterval(() => send(c), period));
    }, offset);
    timers.push(t);
  }
  return () => timers.forEach((t) => clearTimeout(t));
}

// ---- ShareDB ------------------------------------------------------------------------------

let sharedbClient;

async function setupShareDB(st) {
  sharedbClient ??= (await import('sharedb/lib/client/index.js')).default;
  const serverFile = fileURLToPath(new URL('./sharedb-server.mjs', import.meta.url));
  const { child, ready } = spawnServer(
    process.execPath,
    ['--max-old-space-size=8192', '--expose-gc', serverFile, '0'],
    {},
    /listening (\d+)/,
  );
  current = child;
  const port = await ready;
  const url = `ws://127.0.0.1:${port}`;
  const clients = [];
  const openClient = async (s, c) => {
    const id = s * opt.clients + c;
    const ws = await openSocket(url);
    ws.on('error', () => {});
    ws.on('message', () => st.measuring && st.frames++);
    const conn = new sharedbClient.Connection(ws);
    const doc = conn.get('docs', `load-${s}`);
    doc.preventCompose = !opt.compose;
    await new Promise((resolve, reject) => doc.subscribe((e) => (e ? reject(e) : resolve())));
    if (c === 0 && !doc.type) {
      await new Promise((resolve, reject) =>
        doc.create({ title: '', meta: {} }, (e) => (e ? reject(e) : resolve())),
      );
    }
    doc.on('op batch', (op, source) => {
      if (source || !st.measuring) return;
      const sent = op[0]?.oi;
      if (typeof sent === 'number') st.bcast.add(nowUs() - sent);
      st.deliveries++;
    });
    doc.on('error', (e) => countError(st, `doc error: ${e?.message ?? e}`));
    clients.push({ id, ws, conn, doc, key: `c${id}` });
  };
  const raw = opt.sharedbClient === 'raw';
  const ss = Array.from({ length: opt.sessions }, (_, s) => s);
  // The first client of each doc creates it, then the others subscribe.
  const open = raw ? (s, c) => openRawShareDB(st, url, s, c, clients) : openClient;
  await pool(ss, 50, (s) => open(s, 0));
  await pool(
    ss.flatMap((s) => Array.from({ length: opt.clients - 1 }, (_, c) => [s, c + 1])),
    50,
    ([s, c]) => open(s, c),
  );
  const send = raw ? sendRawShareDB(st) : (cl) => {
    const t = nowUs();
    const meta = cl.doc.data.meta;
    const comp = { p: ['meta', cl.key], oi: t };
    if (meta[cl.key] !== undefined) comp.od = meta[cl.key];
    st.sent++;
    if (st.measuring) st.winSent++;
    cl.doc.submitOp([comp], (err) => {
      if (err) return countError(st, `submit: ${err.message ?? err}`);
      st.acked++;
      if (st.measuring) {
        st.winAcked++;
        st.ack.add(nowUs() - t);
      }
    });
  };
  return {
    pid: child.pid,
    clients,
    send,
    close: () => clients.forEach((c) => c.ws.close()),
    stop: async () => {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.once('exit', r)));
    },
  };
}

// `--sharedb-client raw`: ShareDB's wire protocol spoken directly (sharedb/lib/agent.js,
// client/connection.js), as cheaply as the Montage client below, for loads at which the real
// client would saturate the generator's core first. It keeps the real client's rule of one op in
// flight per doc and connection, based on the newest version it has seen (queued ops wait; none
// are composed), so the server sees what it sees from the real client.
const JSON0 = 'http://sharejs.org/types/JSONv0';

/** Resolves with the first parsed message for which `pick(msg)` is true. */
function nextShareDB(ws, pick, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error(`${what}: no answer in 30 s`)), 30_000);
    const on = (data) => {
      const m = JSON.parse(data.toString());
      if (m.error) done(new Error(`${what}: ${JSON.stringify(m.error)}`));
      else if (pick(m)) done(null, m);
    };
    const done = (e, m) => {
      clearTimeout(t);
      ws.off('message', on);
      e ? reject(e) : resolve(m);
    };
    ws.on('message', on);
  });
}

async function openRawShareDB(st, url, s, c, clients) {
  const id = s * opt.clients + c;
  const d = `load-${s}`;
  const ws = await openSocket(url);
  ws.on('error', () => {});
  const hs = nextShareDB(ws, (m) => m.a === 'hs', `handshake ${id}`);
  ws.send(JSON.stringify({ a: 'hs', id: null, protocol: 1, protocolMinor: 2 }));
  const src = (await hs).id;
  const sub = nextShareDB(ws, (m) => m.a === 's' && m.d === d, `subscribe ${id}`);
  ws.send(JSON.stringify({ a: 's', c: 'docs', d }));
  const snap = (await sub).data;
  const cl = { id, ws, d, src, key: `c${id}`, known: snap?.v ?? 0, seq: 0, prev: undefined, queue: [], inflight: null };
  if (c === 0 && !snap?.type) {
    cl.seq = 1;
    const ack = nextShareDB(ws, (m) => m.a === 'op' && m.src === src && m.seq === 1, `create ${d}`);
    ws.send(JSON.stringify({ a: 'op', c: 'docs', d, v: cl.known, src, seq: 1, create: { type: JSON0, data: { title: '', meta: {} } } }));
    cl.known = (await ack).v + 1;
  }
  ws.on('message', (data) => {
    if (st.measuring) st.frames++;
    const m = JSON.parse(data.toString());
    if (m.a !== 'op') return;
    if (m.error) return countError(st, `op: ${JSON.stringify(m.error)}`);
    if (m.src === cl.src && cl.inflight && m.seq === cl.inflight.seq) {
      if (m.v + 1 > cl.known) cl.known = m.v + 1;
      const t = cl.inflight.t;
      cl.inflight = null;
      st.acked++;
      if (st.measuring) {
        st.winAcked++;
        st.ack.add(nowUs() - t);
      }
      if (cl.queue.length) sendRawOp(cl);
    } else if (m.op && m.v >= cl.known) {
      // The first copy of another client's op (the server may send one twice: in reply to our
      // submit and from its pub/sub; the real client skips the second copy too).
      cl.known = m.v + 1;
      if (!st.measuring) return;
      const sent = m.op[0]?.oi;
      if (typeof sent === 'number') st.bcast.add(nowUs() - sent);
      st.deliveries++;
    }
  });
  clients.push(cl);
}

function sendRawOp(cl) {
  const item = cl.queue.shift();
  item.seq = ++cl.seq;
  cl.inflight = item;
  const comp = { p: ['meta', cl.key], oi: item.t };
  if (cl.prev !== undefined) comp.od = cl.prev;
  cl.prev = item.t;
  cl.ws.send(JSON.stringify({ a: 'op', c: 'docs', d: cl.d, v: cl.known, src: cl.src, seq: item.seq, op: [comp] }));
}

const sendRawShareDB = (st) => (cl) => {
  st.sent++;
  if (st.measuring) st.winSent++;
  cl.queue.push({ t: nowUs(), seq: 0 });
  if (!cl.inflight) sendRawOp(cl);
};

// ---- Montage ------------------------------------------------------------------------------

const b64url = (b) => Buffer.from(b).toString('base64url');

/** An HS256 JWT for `sub`, valid for an hour (docs/PROTOCOL.md "Connecting"). */
function jwt(secret, sub) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Resolves with the first message for which `pick(msg)` is true; rejects on an `error`. */
function nextMessage(ws, pick, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error(`${what}: no answer in 30 s`)), 30_000);
    const on = (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'error') done(new Error(`${what}: ${JSON.stringify(m)}`));
      else if (pick(m)) done(null, m);
    };
    const done = (e, m) => {
      clearTimeout(t);
      ws.off('message', on);
      e ? reject(e) : resolve(m);
    };
    ws.on('message', on);
  });
}

async function setupMontage(st) {
  const secret = randomBytes(16).toString('hex'); // 32 bytes, as `montage bench` makes it
  const dir = mkdtempSync(pathJoin(tmpdir(), 'montage-load-'));
  // The flags `montage bench` starts its server with (crates/cli/src/bench.rs, spawn_server).
  const { child, ready } = spawnServer(
    opt.montageBin,
    [
      'serve',
      '--addr',
      '127.0.0.1:0',
      '--data-dir',
      dir,
      '--edits-per-sec',
      '1000000',
      '--messages-per-sec',
      '1000000',
      '--bytes-per-sec',
      '1e12',
    ],
    { MONTAGE_JWT_SECRET: secret, RUST_LOG: 'warn' },
    /listening on (\S+)/,
  );
  current = child;
  const addr = await ready;
  const clients = [];
  const openClient = async (s, c) => {
    const id = s * opt.clients + c;
    const session = `bench-${s}`;
    const ws = await openSocket(`ws://${addr}/v1/ws?token=${jwt(secret, `u${id}`)}`);
    ws.on('error', () => {});
    const joined = nextMessage(ws, (m) => m.type === 'joined', `join ${id}`);
    ws.send(JSON.stringify({ type: 'join', session, client: `c${id}` }));
    const j = await joined;
    const cl = { id, ws, session, known: j.version ?? 0, seq: 0, sentAt: new Map() };
    if (c === 0) {
      // The first joiner owns the session: make the others editors, and wait until it is so.
      const others = new Set(Array.from({ length: opt.clients - 1 }, (_, o) => `u${id + o + 1}`));
      const all = new Promise((resolve, reject) => {
        if (!others.size) return resolve();
        const t = setTimeout(() => reject(new Error(`roles in ${session}: not all changed in 30 s`)), 30_000);
        const on = (data) => {
          const m = JSON.parse(data.toString());
          if (m.type === 'error') reject(new Error(`set_role: ${JSON.stringify(m)}`));
          if (m.type === 'role_changed' && others.delete(m.user) && !others.size) {
            clearTimeout(t);
            ws.off('message', on);
            resolve();
          }
        };
        ws.on('message', on);
      });
      for (const u of others) ws.send(JSON.stringify({ type: 'set_role', session, user: u, role: 'editor' }));
      await all;
    }
    ws.on('message', (data) => {
      if (st.measuring) st.frames++;
      const m = JSON.parse(data.toString());
      if (m.type === 'ack') {
        if (m.version > cl.known) cl.known = m.version;
        const t = cl.sentAt.get(m.seq);
        if (t === undefined) return;
        cl.sentAt.delete(m.seq);
        st.acked++;
        if (st.measuring) {
          st.winAcked++;
          st.ack.add(nowUs() - t);
        }
      } else if (m.type === 'op') {
        if (m.version > cl.known) cl.known = m.version;
        if (!st.measuring) return;
        const sent = m.ops?.[0]?.value;
        if (typeof sent === 'number') st.bcast.add(nowUs() - sent);
        st.deliveries++;
      } else if (m.type === 'error') {
        countError(st, JSON.stringify(m));
      }
    });
    clients.push(cl);
  };
  const ss = Array.from({ length: opt.sessions }, (_, s) => s);
  // Each session's owner first (who creates it and grants the others), then the others.
  await pool(ss, 50, (s) => openClient(s, 0));
  await pool(
    ss.flatMap((s) => Array.from({ length: opt.clients - 1 }, (_, c) => [s, c + 1])),
    50,
    ([s, c]) => openClient(s, c),
  );
  const send = (cl) => {
    const t = nowUs();
    const seq = ++cl.seq;
    cl.sentAt.set(seq, t);
    st.sent++;
    if (st.measuring) st.winSent++;
    cl.ws.send(
      `{"type":"op","session":"${cl.session}","base":${cl.known},"seq":${seq},` +
        `"ops":[{"op":"set","path":["meta","c${cl.id}"],"value":${t}}]}`,
    );
  };
  return {
    pid: child.pid,
    clients,
    send,
    close: () => clients.forEach((c) => c.ws.close()),
    stop: async () => {
      const exited = new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.once('exit', r)));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- one run ------------------------------------------------------------------------------

async function run(kind) {
  const st = newStats();
  const offered = opt.sessions * opt.clients * opt.rate;
  console.log(
    `\n== ${kind}: ${opt.sessions} sessions × ${opt.clients} clients × ${opt.rate} edits/s ` +
      `(${offered} edits/s offered), warm-up ${opt.warmup} s, measured ${opt.duration} s` +
      (opt.pin ? `; server on CPU ${opt.cpus[1]}, generator on CPU ${opt.cpus[0]}` : '; not pinned'),
  );
  console.log(`load average at start: ${load()}`);
  const srv = kind === 'sharedb' ? await setupShareDB(st) : await setupMontage(st);
  console.log(`server pid ${srv.pid}; ${srv.clients.length} clients connected and joined`);
  await sleep(200);
  T0 = performance.now();
  const stopTicking = startTicking(srv.clients, srv.send);
  await sleep(opt.warmup * 1000);

  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  st.measuring = true;
  const cpu0 = cpuSecs(srv.pid);
  const self0 = process.cpuUsage();
  const w0 = performance.now();
  const until = w0 + opt.duration * 1000;
  for (let left; (left = until - performance.now()) > 0; ) {
    await sleep(left > 1500 ? 1000 : left);
    const el = (performance.now() - w0) / 1000;
    process.stderr.write(`\r${el.toFixed(1)}/${opt.duration} s  sent ${st.winSent}  acked ${st.winAcked}  errors ${st.errors}  `);
  }
  st.measuring = false;
  const cpu1 = cpuSecs(srv.pid);
  const wall = (performance.now() - w0) / 1000;
  const self = process.cpuUsage(self0);
  eld.disable();
  stopTicking();
  process.stderr.write('\n');
  // Acks still in flight: up to 2 s more (not counted in the window, only in "unacked").
  for (let i = 0; i < 20 && st.acked < st.sent; i++) await sleep(100);
  const rss = peakRssKiB(srv.pid);
  const cpu = cpu1 - cpu0;

  console.log(
    `edits sent: ${st.winSent} (${(st.winSent / wall).toFixed(0)}/s)  acked: ${st.winAcked} (${(
      st.winAcked / wall
    ).toFixed(0)}/s)  in ${wall.toFixed(2)} s;  unacked 2 s after the end: ${st.sent - st.acked} of ${st.sent} sent since the warm-up began`,
  );
  console.log(`ack latency:       ${st.ack.line()}`);
  console.log(`broadcast latency: ${st.bcast.line()}`);
  console.log(
    `deliveries: ${st.deliveries} (${(st.deliveries / wall).toFixed(0)}/s)  frames received: ${st.frames} (${(
      st.frames / wall
    ).toFixed(0)}/s)  errors: ${st.errors}`,
  );
  console.log(
    `server CPU: ${cpu.toFixed(2)} s over ${wall.toFixed(2)} s = ${((cpu / wall) * 100).toFixed(1)} % of a core` +
      `  = ${st.winAcked ? ((cpu * 1e6) / st.winAcked).toFixed(1) : '–'} µs per acked edit` +
      `  peak RSS: ${(rss / 1024).toFixed(1)} MiB`,
  );
  console.log(
    `generator: ${(((self.user + self.system) / 1e6 / wall) * 100).toFixed(1)} % of a core, ` +
      `event-loop delay p99 ${(eld.percentile(99) / 1e6).toFixed(1)} ms max ${(eld.max / 1e6).toFixed(1)} ms`,
  );
  console.log(`load average at end: ${load()}`);
  srv.close();
  await srv.stop();
  current = null;
  return st;
}

let failed = false;
for (const kind of servers) {
  const st = await run(kind);
  if (st.errors) failed = true;
  if (servers.length > 1) await sleep(2000);
}
process.exit(failed ? 1 : 0);
