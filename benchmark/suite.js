#!/usr/bin/env node
'use strict';
// `npm run bench`: @bisman/cache against the plain-JS ioredis baseline (benchmark/baseline/),
// both on the same fresh Redis, in the same run:
//   1. per operation, at 1 and at 256 calls in flight (tinybench): ours, baseline with ioredis
//      auto-pipelining, baseline without; the rounds alternate between the three so machine
//      noise hits all alike; median of ROUNDS rounds; ratio = ours / the better baseline.
//      On three topologies: `plain` (one redis-server over TCP: every operation), `tls` (one
//      redis-server with `--tls-port`, its certificate from a CA made by the run; ours through
//      `rediss://` + `tls: { ca }`, ioredis with the same CA) and `cluster` (the test helpers'
//      Redis Cluster, 3 primaries + 3 replicas; ours through `cluster`, ioredis `Redis.Cluster`):
//      session hit and checkLimit;
//   2. `express`: the guide's section 8 chain (rate limiter + session + permission) in an
//      Express app (its own process) under autocannon, 100 connections; ours, both baselines
//      and the no-cache stub app alternate, median of the rounds: requests/s, p99, and the app
//      process's CPU per request (all its threads) above the stub's;
//   3. `rss`: RSS before and after 1,000,000 session reads (each in its own process).
// Prints one table with every row; writes BENCHMARKS.md and benchmark/ratios.svg (the chart
// shown in the README).
//
//   node benchmark/suite.js [--quick] [--rounds 5] [--ms 600] [--express-sec 10] [--express-rounds 5]
//     [--express-budget <s>] [--no-express] [--no-rss] [--no-write]
//   node benchmark/suite.js --only tls,cluster     only these parts (plain, tls, cluster,
//     express, rss); `npm run bench:tls` etc.
//   BENCH_ONLY=permNear,permFar node benchmark/suite.js   only these per-operation rows (keys
//     below; `express` for the Express chain), on the plain topology unless --only says more
// A partial run (--only or BENCH_ONLY) writes nothing: it must not replace BENCHMARKS.md or the
// chart.
//
// Every loop is bounded in count and time. The whole run takes about 10 minutes on 2 cores:
// plain ≈ 2.5 min, tls ≈ 1 min, cluster ≈ 1 min, express ≈ 4.5 min (5 rounds of 4 apps ×
// 12 s, and never more than --express-budget seconds), rss ≈ 20 s.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { createCache, hashToken } = require('..');
const { createBaseline } = require('./baseline');
const { TOKENS, TOPOLOGY_OPS, rateLimits, token, gcKey, gcValue, round: benchRound, operations: rowOperations, openOurs, seedContender, seedGeneral } = require('./lib/rows');
const { startBenchRedis, startBenchCluster } = require('./lib/redis');
const { seedApp, startApp, cannon } = require('./lib/express');
const { processCpuSeconds } = require('./lib/cpu');

const ROOT = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const listArg = (name) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? String(argv[i + 1] || '').split(',').map((k) => k.trim()).filter(Boolean) : null;
};
const QUICK = flag('quick');
const ROUNDS = arg('rounds', QUICK ? 3 : 5);
const ROUND_MS = arg('ms', QUICK ? 250 : 600);
const EXPRESS_SEC = arg('express-sec', QUICK ? 3 : 10);
const EXPRESS_ROUNDS = arg('express-rounds', QUICK ? 1 : 5);
const EXPRESS_WARMUP_SEC = 2;
// A round of the Express part starts only while the part has run less than this (the first
// round always runs): the bound in time whatever the rounds' count.
const EXPRESS_BUDGET_SEC = arg('express-budget', 1.5 * EXPRESS_ROUNDS * 4 * (EXPRESS_SEC + EXPRESS_WARMUP_SEC + 1));
const RSS_READS = arg('rss-reads', QUICK ? 100_000 : 1_000_000);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((k) => k.trim()).filter(Boolean)) : null;
const PARTS = ['plain', 'tls', 'cluster', 'express', 'rss'];
const onlyParts = listArg('only');
if (onlyParts !== null && (onlyParts.length === 0 || onlyParts.some((p) => !PARTS.includes(p)))) {
  throw new Error(`--only takes a comma-separated list of ${PARTS.join(', ')}`);
}
// What runs: --only's parts; else with BENCH_ONLY the plain rows it names (and the Express
// chain if it names `express`); else everything.
// --no-express and --no-rss leave those parts out of a full run.
const RUN = new Set(onlyParts || (ONLY !== null ? ['plain', ...(ONLY.has('express') ? ['express'] : [])] : PARTS));
for (const part of ['express', 'rss']) if (flag(`no-${part}`)) RUN.delete(part);
const PARTIAL = onlyParts !== null || ONLY !== null;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// One round of the rows' harness (benchmark/lib/rows.js), ROUND_MS per series.
const round = (series, inFlight) => benchRound(series, inFlight, ROUND_MS);

// The operations (benchmark/lib/rows.js; `ours` and `oursFar` are only read when a row runs:
// null gives the list of names and keys).
const operations = (ours, oursFar) => rowOperations(hashToken, ours, oursFar);

// The harness's own ceiling: an op that only awaits an already-resolved promise.
async function harnessCeiling() {
  const empty = async () => true;
  const ceiling = {};
  for (const inFlight of [1, 256]) {
    const xs = [];
    for (let r = 0; r < ROUNDS; r++) xs.push((await round({ empty }, inFlight)).empty);
    ceiling[inFlight] = median(xs);
  }
  console.log(`harness ceiling (await of a resolved promise): ${fmtOps(ceiling[1])} at 1 in flight, ${fmtOps(ceiling[256])} at 256`);
  return ceiling;
}

// The per-operation rows of one topology. `topo`: { name, ours: createCache's connection
// options, baseline(n): [url or cluster nodes, createBaseline's connection options] for the
// baseline n = 1 (auto-pipelining) or 2 (without), each in its own database or key prefix,
// keys: the operations measured (null: all) }.
async function perOperation(topo) {
  const all = operations(null, null).map((op) => op.key);
  const keys = all.filter((k) => (topo.keys === null || topo.keys.includes(k)) && (ONLY === null || ONLY.has(k)));
  if (keys.length === 0) {
    if (ONLY !== null && !ONLY.has('express')) throw new Error(`BENCH_ONLY names no operation of ${topo.name} (keys: ${(topo.keys || all).join(', ')})`);
    return [];
  }
  const { ours, oursFar } = openOurs(createCache, topo.ours, keys);
  // Each contender in its own database (or, on a cluster, under its own key prefix): the
  // baseline keeps the old layout (a plain set as the user's session index), ours a sorted set,
  // so one key cannot serve both.
  const [apTarget, apOpts] = topo.baseline(1);
  const [noTarget, noOpts] = topo.baseline(2);
  const baseAp = createBaseline(apTarget, { ...apOpts, autoPipelining: true, rateLimits });
  const baseNo = createBaseline(noTarget, { ...noOpts, autoPipelining: false, rateLimits });
  const rows = [];
  try {
    await Promise.all([baseAp.ready(), baseNo.ready()]);
    // one subscriber each way, both reading every published message (ours: the near cache
    // answers only while subscribed)
    if (!(await ours.pubsub.subscribe())) throw new Error(`our pub/sub did not subscribe (${topo.name})`);
    await Promise.all([baseAp.pubsub.subscribe(), baseNo.pubsub.subscribe()]);
    for (const c of [ours, baseAp, baseNo]) await seedContender(c, hashToken, keys, topo.name);
    if (keys.some((k) => k.startsWith('wrap'))) {
      await seedGeneral(ours, topo.name);
      for (let i = 0; i < TOKENS; i++) {
        for (const b of [baseAp, baseNo]) await b.client.set(gcKey(i), JSON.stringify(gcValue(i)), 'EX', 600);
      }
    }
    const ops = operations(ours, oursFar).filter((op) => keys.includes(op.key));
    for (const op of ops) {
      for (const inFlight of [1, 256]) {
        const series = {
          ours: op.ours,
          ioredisAuto: op.base(baseAp),
          ioredis: op.base(baseNo),
        };
        const results = { ours: [], ioredisAuto: [], ioredis: [] };
        await round(series, inFlight); // warm-up
        for (let r = 0; r < ROUNDS; r++) {
          const got = await round(series, inFlight);
          for (const k of Object.keys(results)) results[k].push(got[k]);
        }
        const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
        const best = Math.max(m.ioredisAuto, m.ioredis);
        const row = { topology: topo.name, op: op.name, key: op.key, inFlight, ...m, ratio: m.ours / best };
        rows.push(row);
        console.log(
          `${topo.name.padEnd(7)} ${op.name.padEnd(38)} ${String(inFlight).padStart(3)} in flight: ours ${fmtOps(m.ours)}, ioredis+auto ${fmtOps(m.ioredisAuto)}, ioredis ${fmtOps(
            m.ioredis,
          )} → ${row.ratio.toFixed(2)}×`,
        );
      }
    }
  } finally {
    await Promise.all([ours.shutdown(), oursFar && oursFar.shutdown()]);
    baseAp.close();
    baseNo.close();
  }
  return rows;
}

const fmtOps = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${Math.round(n / 1000)}k`);

// ---- end to end: Express + autocannon ------------------------------------------------------

// The four apps alternate within each round (at most EXPRESS_ROUNDS rounds, and no new round
// once EXPRESS_BUDGET_SEC have passed). Per app and round: a warm-up, then EXPRESS_SEC s of
// autocannon while the app process's CPU (every thread, from /proc) is read before and after.
async function express(url) {
  const impls = ['ours', 'ioredisAuto', 'ioredis', 'none'];
  const results = Object.fromEntries(impls.map((k) => [k, []]));
  const started = Date.now();
  for (let r = 0; r < EXPRESS_ROUNDS && (r === 0 || Date.now() - started < EXPRESS_BUDGET_SEC * 1000); r++) {
    for (const impl of impls) {
      await seedApp(url);
      const app = await startApp(impl, url);
      try {
        await cannon(app.port, EXPRESS_WARMUP_SEC).catch(() => null); // JIT, connections
        const cpu0 = processCpuSeconds(app.pid);
        const a = await cannon(app.port, EXPRESS_SEC);
        const cpu = processCpuSeconds(app.pid) - cpu0;
        if (a.non2xx > 0 || a.errors > 0) throw new Error(`autocannon saw ${a.non2xx} non-2xx answers and ${a.errors} errors (${impl})`);
        if (!(a.requests.total > 0)) throw new Error(`the ${impl} app answered no request`);
        results[impl].push({ rps: a.requests.average, p50: a.latency.p50, p99: a.latency.p99, cpuUs: (cpu / a.requests.total) * 1e6 });
      } finally {
        await app.stop();
      }
      const last = results[impl][results[impl].length - 1];
      console.log(`express ${impl.padEnd(12)} round ${r + 1}: ${Math.round(last.rps)} req/s, p50 ${last.p50} ms, p99 ${last.p99} ms, app CPU ${last.cpuUs.toFixed(1)} µs/request`);
    }
  }
  const out = { rounds: results.ours.length };
  for (const impl of impls) {
    out[impl] = Object.fromEntries(['rps', 'p50', 'p99', 'cpuUs'].map((k) => [k, median(results[impl].map((x) => x[k]))]));
  }
  const best = out.ioredisAuto.rps >= out.ioredis.rps ? 'ioredisAuto' : 'ioredis';
  out.best = best;
  out.rpsRatio = out.ours.rps / out[best].rps;
  out.p99Ratio = out.ours.p99 / out[best].p99;
  // The CPU criterion: what each cache adds to the app's CPU per request, over the stub app
  // (Express and HTTP alone); against the baseline that adds the least.
  for (const impl of ['ours', 'ioredisAuto', 'ioredis']) out[impl].cpuAboveUs = out[impl].cpuUs - out.none.cpuUs;
  out.cpuBest = out.ioredisAuto.cpuAboveUs <= out.ioredis.cpuAboveUs ? 'ioredisAuto' : 'ioredis';
  out.cpuRatio = out[out.cpuBest].cpuAboveUs > 0 ? out.ours.cpuAboveUs / out[out.cpuBest].cpuAboveUs : null;
  return out;
}

// ---- memory: RSS around 1,000,000 session reads, each implementation in its own process ---

function rssChild(impl, url) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', __filename, '--rss-child', impl, url, String(RSS_READS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 180000);
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`RSS run of ${impl} failed (exit ${code}): ${out}`));
      }
    });
  });
}

async function rssMain(impl, url, reads) {
  const cache = impl === 'ours' ? createCache({ url }) : createBaseline(url, { autoPipelining: true });
  if (cache.ready) await cache.ready();
  const get = impl === 'ours' ? (t) => cache.sessionCache.getSessionWithFallback(t) : (t) => cache.getSessionWithFallback(t);
  const tokens = Array.from({ length: TOKENS }, (_, i) => token(i));
  for (let i = 0; i < 2000; i++) await get(tokens[i % TOKENS]);
  global.gc();
  const before = process.memoryUsage().rss;
  let n = 0;
  const until = Date.now() + 150000;
  const lane = async () => {
    while (n < reads && Date.now() < until) {
      n++;
      const s = await get(tokens[n % TOKENS]);
      if (s === null) throw new Error('session miss');
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 256 }, lane));
  const secs = (Date.now() - t0) / 1000;
  const afterNoGc = process.memoryUsage().rss;
  global.gc();
  const after = process.memoryUsage().rss;
  if (impl === 'ours') await cache.shutdown();
  else cache.close();
  console.log(JSON.stringify({ impl, reads: n, secs, before, afterNoGc, after }));
}

// ---- output --------------------------------------------------------------------------------

// The targets are set on the plain topology (issue 8), plus the Express CPU criterion.
const plainRow = (R, key) => R.rows.find((r) => r.topology === 'plain' && r.key === key && r.inFlight === 256)?.ratio;
const TARGETS = [
  { label: 'session hit, 256 in flight', get: (R) => plainRow(R, 'sessionHit'), min: 2.0 },
  { label: 'checkLimit, 256 in flight', get: (R) => plainRow(R, 'checkLimit'), min: 2.0 },
  { label: 'hasModulePermission (near cache), 256 in flight', get: (R) => plainRow(R, 'permNear'), min: 20 },
  { label: 'acquire + release, 256 in flight', get: (R) => plainRow(R, 'lock'), min: 1.5 },
  { label: 'Express chain, requests/s', get: (R) => R.express && R.express.rpsRatio, min: 1.3 },
  { label: 'Express chain, p99 latency (lower is better)', get: (R) => R.express && R.express.p99Ratio, max: 0.75 },
  { label: 'Express chain, app CPU per request above the stub app (lower is better)', get: (R) => R.express && R.express.cpuRatio, max: 0.5 },
];

const IMPL_NAMES = { ours: '@bisman/cache', ioredisAuto: 'baseline, ioredis + autopipelining', ioredis: 'baseline, ioredis', none: 'no cache at all (stubs: the ceiling)' };
const us = (x) => `${x.toFixed(1)} µs`;

// Every row of the run, one table: [topology, operation, in flight, ours, baseline, ratio].
// The baseline column is the better of the two ioredis set-ups (named when it is not the
// auto-pipelining one).
function allRows(R) {
  const out = [];
  for (const r of R.rows) {
    const base = r.ioredisAuto >= r.ioredis ? fmtOps(r.ioredisAuto) : `${fmtOps(r.ioredis)} (no autopipelining)`;
    out.push([r.topology, r.op, String(r.inFlight), fmtOps(r.ours), base, `${r.ratio.toFixed(2)}×`]);
  }
  if (R.express) {
    const e = R.express;
    const b = e[e.best];
    const cb = e[e.cpuBest];
    const name = (k) => (k === 'ioredisAuto' ? '' : ' (no autopipelining)');
    out.push(['plain', 'Express chain, requests/s', '100 conn.', String(Math.round(e.ours.rps)), `${Math.round(b.rps)}${name(e.best)}`, `${e.rpsRatio.toFixed(2)}×`]);
    out.push(['plain', 'Express chain, p99 ms (lower is better)', '100 conn.', String(e.ours.p99), `${b.p99}${name(e.best)}`, `${e.p99Ratio.toFixed(2)}×`]);
    out.push([
      'plain',
      'Express app CPU per request above the stub (lower is better)',
      '100 conn.',
      us(e.ours.cpuAboveUs),
      `${us(cb.cpuAboveUs)}${name(e.cpuBest)}`,
      e.cpuRatio === null ? 'n/a' : `${e.cpuRatio.toFixed(2)}×`,
    ]);
  }
  return out;
}

function textTable(head, rows) {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i <= 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function svg(rows) {
  const bars = rows.map((r) => ({ label: `${r.topology === 'plain' ? '' : `${r.topology}: `}${r.op} (${r.inFlight})`, v: r.ratio }));
  const W = 760;
  const left = 300;
  const barH = 18;
  const gap = 6;
  const top = 40;
  const H = top + bars.length * (barH + gap) + 40;
  // log scale: ratios span 0.5× to 30×
  const lo = Math.log10(0.25);
  const hi = Math.log10(Math.max(40, ...bars.map((b) => b.v * 1.2)));
  const x = (v) => left + ((Math.log10(Math.max(v, 0.25)) - lo) / (hi - lo)) * (W - left - 60);
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">@bisman/cache ÷ best plain-JS ioredis baseline (ops/s, log scale; calls in flight)</text>`,
  ];
  for (const t of [0.5, 1, 2, 5, 10, 20]) {
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top - 6}" y2="${H - 30}" stroke="${t === 1 ? '#000' : '#ddd'}"/>`);
    parts.push(`<text x="${x(t)}" y="${H - 15}" text-anchor="middle">${t}×</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * (barH + gap);
    const color = b.v >= 1 ? '#2b7bb9' : '#d9534f';
    parts.push(`<text x="${left - 8}" y="${y + barH - 5}" text-anchor="end">${esc(b.label)}</text>`);
    parts.push(`<rect x="${x(1)}" y="${y}" width="${Math.max(1, x(b.v) - x(1))}" height="${barH}" fill="${color}"/>`);
    if (b.v < 1) parts.push(`<rect x="${x(b.v)}" y="${y}" width="${x(1) - x(b.v)}" height="${barH}" fill="${color}"/>`);
    parts.push(`<text x="${Math.max(x(b.v), x(1)) + 4}" y="${y + barH - 5}">${b.v.toFixed(2)}×</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function machine(redisVersion) {
  const cpus = os.cpus();
  let kernel = os.release();
  return [
    `- CPU: ${cpus[0] ? cpus[0].model.trim() : 'unknown'}, ${cpus.length} logical cores (shared with other work while measured: expect noise)`,
    `- memory: ${Math.round(os.totalmem() / 2 ** 30)} GiB; OS: ${os.type()} ${kernel} (${os.arch()})`,
    `- Node.js ${process.version}; redis-server ${redisVersion || '?'} (fresh, loopback, no persistence); ioredis ${require('ioredis/package.json').version}`,
  ].join('\n');
}

function markdown(R) {
  const L = [];
  L.push('# Benchmarks');
  L.push('');
  L.push('Generated by `npm run bench` (`benchmark/suite.js`); do not edit by hand.');
  L.push('');
  L.push(`Measured ${R.date}. Machine:`);
  L.push('');
  L.push(machine(R.redisVersion));
  L.push('');
  L.push(
    'The baseline (`benchmark/baseline/`) is the same API in plain JavaScript on ioredis 5 (Lua for the limiter and the lock, SHA-256 token keys, a subscriber connection), run with and without `enableAutoPipelining`; the ratio is ours divided by the better of the two. Every series runs against the same redis-server in the same run; rounds alternate between the series; each figure is the median of '
    + `${R.rounds} rounds of ${R.roundMs} ms (tinybench runs each round: one task per series, an iteration = a batch of calls that keeps the stated number in flight).`,
  );
  L.push('');
  L.push('![ratios](benchmark/ratios.svg)');
  L.push('');
  L.push('## Per operation (ops/s)');
  L.push('');
  L.push(
    'Topologies: **plain** is one redis-server over TCP (every operation). **tls** is one redis-server listening with `--tls-port` on loopback, its certificate signed by a CA the run makes with openssl; ours connects with `rediss://` and `tls: { ca }`, the baseline (ioredis) with the same CA. **cluster** is a Redis Cluster of 3 primaries and 3 replicas (the test helpers\' `startCluster`); ours connects with `cluster: [seed nodes]`, the baseline with ioredis `Redis.Cluster`, running the same single-key steps ours runs on a cluster where a standalone Redis gets one multi-key script (`checkLimit`: the IP\'s index entry, then the counter). On tls and cluster the rows are session hit and `checkLimit`, measured as the plain rows are.',
  );
  L.push('');
  L.push('| topology | operation | in flight | @bisman/cache | ioredis + autopipelining | ioredis | ratio |');
  L.push('|---|---|---:|---:|---:|---:|---:|');
  if (R.ceiling) L.push(`| – | *(the harness alone: await of a resolved promise)* | 1 / 256 | ${fmtOps(R.ceiling[1])} / ${fmtOps(R.ceiling[256])} | | | |`);
  for (const r of R.rows) L.push(`| ${r.topology} | ${r.op} | ${r.inFlight} | ${fmtOps(r.ours)} | ${fmtOps(r.ioredisAuto)} | ${fmtOps(r.ioredis)} | ${r.ratio.toFixed(2)}× |`);
  L.push('');
  if (R.express) {
    const e = R.express;
    L.push(`## Express, guide section 8 chain (rate limiter + session + permission)`);
    L.push('');
    L.push(
      `autocannon, 100 connections, ${R.expressSec} s per round after ${EXPRESS_WARMUP_SEC} s of warm-up, the four apps alternating, median of ${e.rounds} rounds; each app in its own process. `
      + 'App CPU: user + system time of the app process (every thread: JS, libuv, V8 helpers, our I/O thread) during the round, from `/proc`, per request answered; "above the stub" subtracts the no-cache app\'s, i.e. what the cache layer costs per request.',
    );
    L.push('');
    L.push('| implementation | requests/s | p50 ms | p99 ms | app CPU per request | above the stub |');
    L.push('|---|---:|---:|---:|---:|---:|');
    for (const k of ['ours', 'ioredisAuto', 'ioredis', 'none']) {
      L.push(`| ${IMPL_NAMES[k]} | ${Math.round(e[k].rps)} | ${e[k].p50} | ${e[k].p99} | ${us(e[k].cpuUs)} | ${k === 'none' ? '–' : us(e[k].cpuAboveUs)} |`);
    }
    L.push('');
    L.push(`Ratio to the better baseline: ${e.rpsRatio.toFixed(2)}× requests/s, ${e.p99Ratio.toFixed(2)}× p99.`);
    L.push(
      `App CPU per request above the stub, ours ÷ the baseline that adds the least (${IMPL_NAMES[e.cpuBest]}): ${e.cpuRatio === null ? 'n/a (the baseline measured no cost above the stub)' : `${e.cpuRatio.toFixed(2)}×`}.`,
    );
    L.push(`The app without any cache (stubs) runs at ${(e.none.rps / e[e.best].rps).toFixed(2)}× the better baseline's requests/s: the most any cache could reach here.`);
    L.push('');
  }
  if (R.rss) {
    L.push(`## Memory: RSS around ${RSS_READS.toLocaleString('en')} session reads (256 in flight)`);
    L.push('');
    L.push('| implementation | RSS before | RSS after (before GC) | RSS after GC | reads/s |');
    L.push('|---|---:|---:|---:|---:|');
    const mb = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    for (const r of R.rss) L.push(`| ${r.impl === 'ours' ? '@bisman/cache' : 'baseline, ioredis + autopipelining'} | ${mb(r.before)} | ${mb(r.afterNoGc)} | ${mb(r.after)} | ${fmtOps(r.reads / r.secs)} |`);
    L.push('');
  }
  L.push('## Targets (issue 8)');
  L.push('');
  L.push('| target | measured | met |');
  L.push('|---|---:|:---:|');
  for (const t of TARGETS) {
    const v = t.get(R);
    if (v === undefined) continue; // its part did not run
    if (v === null) {
      L.push(`| ${t.label}: ${t.min != null ? `≥ ${t.min}×` : `≤ ${t.max}×`} | n/a | – |`);
      continue;
    }
    const met = t.min != null ? v >= t.min : v <= t.max;
    L.push(`| ${t.label}: ${t.min != null ? `≥ ${t.min}×` : `≤ ${t.max}×`} | ${v.toFixed(2)}× | ${met ? 'yes' : '**no**'} |`);
  }
  L.push('');
  if (R.notes) L.push(R.notes);
  return L.join('\n') + '\n';
}

// Runs one part, its servers started and stopped around it.
async function withServer(start, fn) {
  const server = await start();
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

async function main() {
  const started = Date.now();
  const R = { date: new Date().toISOString().replace(/\..*/, ' UTC'), rounds: ROUNDS, roundMs: ROUND_MS, expressSec: EXPRESS_SEC, rows: [] };
  const perOp = ['plain', 'tls', 'cluster'].some((p) => RUN.has(p));
  console.log(`parts: ${[...RUN].join(', ')}${perOp ? `; per operation: ${ROUNDS} rounds of ${ROUND_MS} ms per series` : ''}`);
  if (RUN.has('plain') || RUN.has('express') || RUN.has('rss')) {
    await withServer(startBenchRedis, async (server) => {
      R.redisVersion = server.version;
      if (RUN.has('plain')) {
        R.ceiling = await harnessCeiling();
        const base = (n) => [`${server.url}/${n}`, {}];
        R.rows.push(...(await perOperation({ name: 'plain', ours: { url: server.url }, baseline: base, keys: null })));
      }
      if (RUN.has('express')) {
        console.log(`\nExpress chain: autocannon 100 connections × ${EXPRESS_SEC} s, ${EXPRESS_ROUNDS} rounds (at most ${Math.round(EXPRESS_BUDGET_SEC)} s)`);
        R.express = await express(server.url);
      }
      if (RUN.has('rss')) {
        console.log(`\nRSS around ${RSS_READS} session reads`);
        R.rss = [await rssChild('ours', server.url), await rssChild('baseline', server.url)];
        for (const r of R.rss) console.log(`${r.impl}: ${(r.before / 2 ** 20).toFixed(1)} MiB → ${(r.after / 2 ** 20).toFixed(1)} MiB after GC (${r.reads} reads in ${r.secs} s)`);
      }
    });
  }
  if (RUN.has('tls')) {
    console.log('\nTLS: a CA, a server certificate and a redis-server with --tls-port');
    await withServer(
      () => startBenchRedis({ tls: true }),
      async (server) => {
        R.redisVersion = server.version;
        const tls = { ca: server.ca };
        const base = (n) => [`${server.tlsUrl}/${n}`, { tls }];
        R.rows.push(...(await perOperation({ name: 'tls', ours: { url: server.tlsUrl, tls }, baseline: base, keys: TOPOLOGY_OPS })));
      },
    );
  }
  if (RUN.has('cluster')) {
    console.log('\nCluster: 3 primaries + 3 replicas');
    await withServer(startBenchCluster, async (cluster) => {
      const base = (n) => [cluster.nodes, { keyPrefix: `base${n}:` }];
      R.rows.push(...(await perOperation({ name: 'cluster', ours: { cluster: cluster.nodes }, baseline: base, keys: TOPOLOGY_OPS })));
    });
  }
  const notesFile = path.join(__dirname, 'NOTES.md');
  if (fs.existsSync(notesFile)) R.notes = fs.readFileSync(notesFile, 'utf8');
  console.log('\n' + textTable(['topology', 'operation', 'in flight', 'ours', 'baseline (better)', 'ratio'], allRows(R)));
  const secs = Math.round((Date.now() - started) / 1000);
  if (PARTIAL) {
    console.log(`\nbench: done in ${secs} s; a partial run (${[...RUN].join(', ')}${ONLY !== null ? `; BENCH_ONLY=${[...ONLY].join(',')}` : ''}): nothing written`);
    return;
  }
  fs.writeFileSync(path.join(__dirname, 'ratios.svg'), svg(R.rows));
  if (!flag('no-write')) fs.writeFileSync(path.join(ROOT, 'BENCHMARKS.md'), markdown(R));
  console.log(`\nbench: done in ${secs} s; wrote BENCHMARKS.md and benchmark/ratios.svg`);
}

if (argv[0] === '--rss-child') {
  rssMain(argv[1], argv[2], Number(argv[3])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
