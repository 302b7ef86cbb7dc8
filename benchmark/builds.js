#!/usr/bin/env node
'use strict';
// One build of this package against another, per operation row of `npm run bench`: the rows
// benchmark/suite.js measures for our implementation (benchmark/lib/rows.js: the same
// operations, seeding, in-flight counts and harness), on the same topologies (plain: every
// operation; tls: a redis-server with --tls-port, its certificate from a CA the run makes;
// cluster: 3 primaries + 3 replicas; on tls and cluster the session hit and checkLimit), with
// build A and build B in the same run, on the same servers.
//
//   node benchmark/builds.js <dir A> <dir B> [--only plain,tls,cluster] [--rounds 5] [--ms 600]
//     [--rows sessionHit,checkLimit,…] [--in-flight 1,256] [--commandstats]
//
// A "dir" is a checkout of this package with its addon built (`npm ci` or `npm run build`): it
// must `require()` as the package. Each table row (topology, operation, calls in flight) runs
// ROUNDS rounds; a round runs A and B once each, in that order in even rounds and B first in
// odd ones, each in a fresh child process (the two addons never share a process) that starts
// from an emptied Redis (FLUSHALL and SCRIPT FLUSH on every primary), opens the cache as
// suite.js does, subscribes, seeds, runs one warm-up round and one measured round of --ms ms
// (tinybench, as suite.js's rounds), and reports calls/s. The figures are the medians of the
// rounds; "B/A by round" is the spread of the ratios of the A and B runs of one round. Each row
// also prints the child's CPU time per call (user + system, every thread of the process: JS,
// the addon's I/O threads; not Redis'), less sensitive to other work on the machine than calls/s.
// A row that a build cannot run (a method its cache lacks, e.g. the general cache's wrap before
// it existed) prints as n/a with the reason; a child that fails prints its error in the row.
//
// --rows: only these operations (keys: sessionHit, setSession, checkLimit, permNear, permFar,
// lock, wrapHit, wrapNear, publish). --commandstats: each child also reads the Redis commands its
// measured round sent (CONFIG RESETSTAT after the warm-up, INFO commandstats after, summed over
// the primaries) and the run prints them per call for each build (from its first round).
//
// Every loop is bounded in count (rounds × rows) and every child in time (killed after
// CHILD_TIMEOUT_MS); all traffic goes to redis-servers on loopback started by this run.

const path = require('path');
const fs = require('fs');
const { spawn, execFileSync } = require('child_process');
const rows = require('./lib/rows');

const CHILD_TIMEOUT_MS = 90_000;
const PARTS = ['plain', 'tls', 'cluster'];
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmtOps = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1000).toFixed(1)}k`);

// Every URL a child may reach is on loopback.
function assertLoopback(urls) {
  for (const u of urls) {
    const host = new URL(u).hostname;
    if (!LOOPBACK.has(host)) throw new Error(`not a loopback address: ${u}`);
  }
}

// ---- child: one row of one build --------------------------------------------------------------

// → { opsPerSec, calls, cpuUs (the process's CPU time, every thread, per call), commands } or
// { na: reason }, as the last line of stdout.
async function child(spec) {
  const { dir, conn, key, inFlight, ms, statsUrls } = spec;
  assertLoopback([...(conn.url ? [conn.url] : []), ...(conn.cluster || []), ...(statsUrls || [])]);
  const pkg = require(path.resolve(dir));
  if (typeof pkg.createCache !== 'function' || typeof pkg.hashToken !== 'function') return { na: 'the package exports no createCache/hashToken' };
  const { ours, oursFar } = rows.openOurs(pkg.createCache, conn, [key]);
  const shutdown = () => Promise.race([Promise.all([ours.shutdown(), oursFar && oursFar.shutdown()]), new Promise((r) => setTimeout(r, 5000).unref())]);
  const op = rows.operations(pkg.hashToken, ours, oursFar).find((o) => o.key === key);
  const na = rows.missing(ours, op);
  if (na !== null) {
    await shutdown();
    return { na };
  }
  let admin = [];
  try {
    if (!(await ours.pubsub.subscribe())) throw new Error('our pub/sub did not subscribe');
    await rows.seedContender(ours, pkg.hashToken, [key], 'builds');
    if (key.startsWith('wrap')) await rows.seedGeneral(ours, 'builds');
    const series = { ours: op.ours };
    await rows.round(series, inFlight, ms); // warm-up
    if (statsUrls) {
      const Redis = require('ioredis');
      admin = statsUrls.map((u) => new Redis(u, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 5000 }));
      for (const a of admin) await a.config('RESETSTAT');
    }
    const calls = {};
    const cpu0 = process.cpuUsage();
    const got = await rows.round(series, inFlight, ms, calls);
    const cpu = process.cpuUsage(cpu0);
    let commands = null;
    if (statsUrls) {
      commands = {};
      for (const a of admin) {
        for (const [, cmd, n, usec] of (await a.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
          const c = (commands[cmd] ||= { calls: 0, usec: 0 });
          c.calls += Number(n) / calls.ours;
          c.usec += Number(usec) / calls.ours;
        }
      }
      delete commands.config; // our own RESETSTAT
      delete commands.info;
    }
    return { opsPerSec: got.ours, calls: calls.ours, cpuUs: (cpu.user + cpu.system) / calls.ours, commands };
  } finally {
    for (const a of admin) a.disconnect();
    await shutdown();
  }
}

// ---- parent ---------------------------------------------------------------------------------

function runChild(spec) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [__filename, '--child', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      try {
        if (code === 0) return resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {}
      const why = err.split('\n').find((l) => /Error|error/.test(l)) || err.split('\n')[0] || '';
      resolve({ failed: `exit ${signal || code}${why ? `: ${why.trim().slice(0, 160)}` : ''}` });
    });
  });
}

// The commit of a checkout (for the header), or '?'.
function describe(dir) {
  try {
    const rev = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 }).trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', timeout: 5000 }).trim();
    return `${rev}${dirty ? ' + local changes' : ''}`;
  } catch {
    return '?';
  }
}

function parseArgs(argv) {
  const named = {};
  const dirs = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--commandstats') named.commandstats = true;
    else if (argv[i].startsWith('--')) named[argv[i].slice(2)] = argv[++i];
    else dirs.push(argv[i]);
  }
  const list = (name, all) => {
    if (named[name] === undefined) return all;
    const xs = String(named[name]).split(',').map((s) => s.trim()).filter(Boolean);
    if (xs.length === 0 || xs.some((x) => !all.map(String).includes(x))) throw new Error(`--${name} takes a comma-separated list of ${all.join(', ')}`);
    return all.filter((x) => xs.includes(String(x)));
  };
  const int = (name, dflt, lo, hi) => {
    const v = named[name] === undefined ? dflt : Number(named[name]);
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`--${name} takes a whole number from ${lo} to ${hi}`);
    return v;
  };
  if (dirs.length !== 2) throw new Error('usage: node benchmark/builds.js <dir A> <dir B> [--only plain,tls,cluster] [--rounds 5] [--ms 600] [--rows …] [--in-flight 1,256] [--commandstats]');
  for (const d of dirs) {
    if (!fs.existsSync(path.join(d, 'package.json'))) throw new Error(`${d}: no package.json (a checkout of this package, built, is expected)`);
  }
  const known = new Set(['only', 'rounds', 'ms', 'rows', 'in-flight', 'commandstats']);
  for (const k of Object.keys(named)) if (!known.has(k)) throw new Error(`unknown option --${k}`);
  return {
    dirs: dirs.map((d) => path.resolve(d)),
    parts: list('only', PARTS),
    rounds: int('rounds', 5, 1, 50),
    ms: int('ms', 600, 50, 10_000),
    keys: list('rows', rows.ROW_KEYS),
    inFlights: list('in-flight', [1, 256]).map(Number),
    commandstats: named.commandstats === true,
  };
}

// The rows of one topology: for each operation and in-flight count, ROUNDS rounds of A and B.
async function topology(opt, name, server, conn, opKeys, results) {
  const names = Object.fromEntries(rows.operations(() => '', null, null).map((o) => [o.key, o.name]));
  const statsUrls = opt.commandstats ? await server.primaries() : null;
  for (const key of opKeys) {
    for (const inFlight of opt.inFlights) {
      const row = { topology: name, key, op: names[key], inFlight, A: [], B: [], cpuA: [], cpuB: [], ratios: [], note: [], commands: {} };
      const stopped = { A: null, B: null };
      for (let r = 0; r < opt.rounds; r++) {
        const order = r % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
        const got = {};
        for (const build of order) {
          if (stopped[build] !== null) continue;
          await server.flush();
          const res = await runChild({ dir: opt.dirs[build === 'A' ? 0 : 1], conn, key, inFlight, ms: opt.ms, statsUrls });
          if (res.na || res.failed) {
            stopped[build] = res.na ? `n/a: ${res.na}` : `failed: ${res.failed}`;
            row.note.push(`${build} ${stopped[build]}`);
            continue;
          }
          got[build] = res.opsPerSec;
          row[build].push(res.opsPerSec);
          row[`cpu${build}`].push(res.cpuUs);
          if (res.commands && !row.commands[build]) row.commands[build] = res.commands;
        }
        if (got.A !== undefined && got.B !== undefined) row.ratios.push(got.B / got.A);
        if (stopped.A !== null && stopped.B !== null) break;
      }
      row.a = row.A.length ? median(row.A) : null;
      row.b = row.B.length ? median(row.B) : null;
      results.push(row);
      const show = (xs) => xs.map(fmtOps).join(' ');
      const cpu = (xs) => (xs.length ? `${median(xs).toFixed(2)} µs` : '–');
      console.log(
        `${name.padEnd(7)} ${row.op.padEnd(38)} ${String(inFlight).padStart(3)} in flight: A ${row.a === null ? '–' : fmtOps(row.a)} [${show(row.A)}], B ${row.b === null ? '–' : fmtOps(row.b)} [${show(row.B)}]`
        + `${row.a !== null && row.b !== null ? ` → ${(row.b / row.a).toFixed(2)}×` : ''}${row.note.length ? ` (${row.note.join('; ')})` : ''}`,
      );
      console.log(`        CPU per call (child process, every thread; median): A ${cpu(row.cpuA)}, B ${cpu(row.cpuB)}`);
      for (const build of ['A', 'B']) {
        const c = row.commands[build];
        if (!c) continue;
        const list = Object.entries(c).filter(([, v]) => v.calls >= 0.005).sort((x, y) => y[1].usec - x[1].usec);
        const usec = list.reduce((s, [, v]) => s + v.usec, 0);
        const each = list.length ? list.map(([k, v]) => `${k} ${v.calls.toFixed(2)} (${v.usec.toFixed(2)} µs)`).join(', ') : 'no Redis command';
        console.log(`        ${build} per call: ${each}; Redis ${usec.toFixed(2)} µs`);
      }
    }
  }
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const { startBenchRedis, startBenchCluster } = require('./lib/redis');
  const started = Date.now();
  const [A, B] = opt.dirs;
  console.log(`A = ${A} (${describe(A)})\nB = ${B} (${describe(B)})`);
  console.log(`parts: ${opt.parts.join(', ')}; ${opt.rounds} rounds (A and B alternating, each a fresh child) of ${opt.ms} ms after a warm-up round, per row\n`);
  const results = [];
  const withServer = async (start, fn) => {
    const server = await start();
    try {
      await fn(server);
    } finally {
      await server.stop();
    }
  };
  const on = (topoKeys) => opt.keys.filter((k) => topoKeys.includes(k));
  if (opt.parts.includes('plain') && on(rows.ROW_KEYS).length) {
    await withServer(startBenchRedis, (server) => topology(opt, 'plain', server, { url: server.url }, on(rows.ROW_KEYS), results));
  }
  if (opt.parts.includes('tls') && on(rows.TOPOLOGY_OPS).length) {
    await withServer(
      () => startBenchRedis({ tls: true }),
      (server) => topology(opt, 'tls', server, { url: server.tlsUrl, tls: { ca: server.ca } }, on(rows.TOPOLOGY_OPS), results),
    );
  }
  if (opt.parts.includes('cluster') && on(rows.TOPOLOGY_OPS).length) {
    await withServer(startBenchCluster, (cluster) => topology(opt, 'cluster', cluster, { cluster: cluster.nodes }, on(rows.TOPOLOGY_OPS), results));
  }
  if (results.length === 0) throw new Error('no row to run: --rows names no operation of the --only topologies');
  const spread = (xs) => (xs.length ? `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}` : '–');
  console.log(`\n| topology | operation | in flight | A ops/s | B ops/s | B/A | B/A by round |${results.some((r) => r.note.length) ? ' note |' : ''}`);
  console.log(`|---|---|---:|---:|---:|---:|---:|${results.some((r) => r.note.length) ? '---|' : ''}`);
  for (const r of results) {
    const ratio = r.a !== null && r.b !== null ? `${(r.b / r.a).toFixed(2)}×` : 'n/a';
    const note = results.some((x) => x.note.length) ? ` ${r.note.join('; ')} |` : '';
    console.log(`| ${r.topology} | ${r.op} | ${r.inFlight} | ${r.a === null ? 'n/a' : fmtOps(r.a)} | ${r.b === null ? 'n/a' : fmtOps(r.b)} | ${ratio} | ${spread(r.ratios)} |${note}`);
  }
  console.log(`\nA = ${A} (${describe(A)}), B = ${B} (${describe(B)}); medians of ${opt.rounds} rounds of ${opt.ms} ms; done in ${Math.round((Date.now() - started) / 1000)} s`);
}

if (process.argv[2] === '--child') {
  child(JSON.parse(process.argv[3])).then(
    (res) => process.stdout.write(JSON.stringify(res) + '\n', () => process.exit(0)),
    (err) => {
      console.error(err && err.stack ? err.stack : err);
      process.exit(1);
    },
  );
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
