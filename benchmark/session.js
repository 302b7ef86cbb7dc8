'use strict';
// Session hits: `getSessionWithFallback(token)` answered from Redis, ours against the same API
// written in plain JavaScript on ioredis (benchmark/baseline/sessionCache.js), with and
// without ioredis auto-pipelining.
//
// One fresh redis-server on loopback, one process, all contenders in the same run. Each
// contender seeds its own 1,000 tokens through its own setSession (same data shape, about
// 200 bytes of JSON), every answer is checked before timing, then runs alternate
// A, B, C, A, B, C, … (one warm-up run each, then N measured runs each), at 256 calls in
// flight and at 1 (sequential awaits). Reported: median ops/s per contender and the ratio
// ours / best ioredis. Results also go to benchmark/results/session.json.
//
//   node benchmark/session.js [--calls=200000] [--seq-calls=20000] [--runs=5]
//                             [--in-flight=256] [--tokens=1000] [--max-run-ms=20000]
//                             [--out=benchmark/results/session.json] [--quick]

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');
const Redis = require('ioredis');

const { startBenchRedis } = require('./lib/redis');
const { SessionCache: BaselineSessionCache, hashToken } = require('./baseline/sessionCache');

// ---------------------------------------------------------------------------------------------
// Options

const DEFAULTS = {
  calls: 200000, // calls per run at `inFlight`
  seqCalls: 20000, // calls per run at 1 in flight
  runs: 5, // measured runs per contender and phase (after one warm-up each)
  inFlight: 256,
  tokens: 1000,
  maxRunMs: 20000, // any single run stops after this long, whatever its count
  out: path.join(__dirname, 'results', 'session.json'),
};
const QUICK = { calls: 20000, seqCalls: 2000, runs: 3 };

function parseArgs(argv) {
  const opts = { ...DEFAULTS };
  const names = {
    '--calls': 'calls',
    '--seq-calls': 'seqCalls',
    '--runs': 'runs',
    '--in-flight': 'inFlight',
    '--tokens': 'tokens',
    '--max-run-ms': 'maxRunMs',
  };
  for (const arg of argv) {
    if (arg === '--quick') {
      Object.assign(opts, QUICK);
      continue;
    }
    const [flag, value] = arg.split('=', 2);
    if (flag === '--out' && value) {
      opts.out = path.resolve(value);
    } else if (names[flag] && value !== undefined) {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1 || n > 100000000) throw new Error(`${flag} must be a positive integer`);
      opts[names[flag]] = n;
    } else {
      throw new Error(`unknown argument ${arg} (see the header of benchmark/session.js)`);
    }
  }
  if (opts.maxRunMs > 120000) throw new Error('--max-run-ms is at most 120000');
  return opts;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtRatio = (r) => `${r.toFixed(2)}x`;

// A session row as the ERP stores it: about 200 bytes of JSON.
const ROLES = ['EMPLOYEE', 'MANAGER', 'FINANCE_MANAGER', 'HR_ADMIN', 'AUDITOR'];
const PERMISSIONS = ['tasks:read', 'tasks:write', 'invoices:read', 'invoices:approve', 'payments:view', 'reports:export'];
function sessionRow(i, expiresAt) {
  return {
    user_id: 10000 + (i % 250),
    tenant_id: `tnt_${String(i % 7).padStart(4, '0')}`,
    role: ROLES[i % ROLES.length],
    expires_at: expiresAt,
    permissions: PERMISSIONS,
  };
}

// Redis-side counters: GET calls (to prove every timed call really went to Redis) and the
// server's CPU time.
async function redisCounters(admin) {
  const info = await admin.info('all');
  const get = /cmdstat_get:calls=(\d+)/.exec(info);
  const user = /used_cpu_user:([\d.]+)/.exec(info);
  const sys = /used_cpu_sys:([\d.]+)/.exec(info);
  return {
    gets: get ? Number(get[1]) : 0,
    cpuMs: ((user ? Number(user[1]) : 0) + (sys ? Number(sys[1]) : 0)) * 1000,
  };
}

// ---------------------------------------------------------------------------------------------
// The two load shapes. Both are bounded by count and by time (`maxMs`), and check every answer
// cheaply (non-null, `source: 'cache'`): the full check of the data happens before timing.

// Keeps exactly `inFlight` calls outstanding: each completion starts the next call, tokens
// taken round-robin.
function runConcurrent(fn, tokens, calls, inFlight, maxMs) {
  return new Promise((resolve) => {
    const n = tokens.length;
    let issued = 0;
    let done = 0;
    let bad = 0;
    let errors = 0;
    let firstError = null;
    let stop = false;
    const start = performance.now();
    const deadline = start + maxMs;

    const finish = () => {
      const ms = performance.now() - start;
      resolve({ calls: done, ms, opsPerSec: (done * 1000) / ms, bad, errors, firstError, timedOut: issued < calls });
    };
    const next = () => {
      done++;
      if ((done & 255) === 0 && performance.now() > deadline) stop = true;
      if (!stop && issued < calls) launch();
      else if (done === issued) finish();
    };
    const onResult = (r) => {
      if (r === null || r.source !== 'cache') bad++;
      next();
    };
    const onError = (err) => {
      errors++;
      if (firstError === null) firstError = err;
      next();
    };
    const launch = () => {
      const token = tokens[issued % n];
      issued++;
      let p;
      try {
        p = fn(token);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(onResult, onError);
    };

    const initial = Math.min(inFlight, calls);
    for (let i = 0; i < initial; i++) launch();
  });
}

// Sequential awaits: one call in flight.
async function runSequential(fn, tokens, calls, maxMs) {
  const n = tokens.length;
  let done = 0;
  let bad = 0;
  let errors = 0;
  let firstError = null;
  const start = performance.now();
  const deadline = start + maxMs;
  for (let i = 0; i < calls; i++) {
    try {
      const r = await fn(tokens[i % n]);
      if (r === null || r.source !== 'cache') bad++;
    } catch (err) {
      errors++;
      if (firstError === null) firstError = err;
    }
    done++;
    if ((done & 255) === 0 && performance.now() > deadline) break;
  }
  const ms = performance.now() - start;
  return { calls: done, ms, opsPerSec: (done * 1000) / ms, bad, errors, firstError, timedOut: done < calls };
}

// ---------------------------------------------------------------------------------------------
// Contenders

async function makeContenders(url, port) {
  const loaderCalls = { ours: 0, ioredis: 0, ioredisAuto: 0 };
  // Every timed call is a hit: a loader call would mean the benchmark measured something else.
  const loaderFor = (name) => async () => {
    loaderCalls[name]++;
    return null;
  };

  const ours = require('../index.js').createCache({ url, loaders: { session: loaderFor('ours') } });

  const ioClient = (autoPipelining) => {
    // its own database: the baseline's session index is a plain set, ours a sorted set
    const c = new Redis({ host: '127.0.0.1', port, db: autoPipelining ? 2 : 1, enableAutoPipelining: autoPipelining, lazyConnect: false });
    c.on('error', (err) => console.error(`ioredis${autoPipelining ? ' (auto)' : ''}: ${err.message}`));
    return c;
  };
  const plainClient = ioClient(false);
  const autoClient = ioClient(true);
  const plain = new BaselineSessionCache(plainClient, { loader: loaderFor('ioredis') });
  const auto = new BaselineSessionCache(autoClient, { loader: loaderFor('ioredisAuto') });

  const contenders = [
    {
      key: 'ours',
      label: '@bisman/cache (native)',
      get: (t) => ours.sessionCache.getSessionWithFallback(t),
      set: (h, d) => ours.sessionCache.setSession(h, d),
      close: () => ours.shutdown(),
    },
    {
      key: 'ioredis',
      label: 'ioredis 5',
      get: (t) => plain.getSessionWithFallback(t),
      set: (h, d) => plain.setSession(h, d),
      close: async () => plainClient.disconnect(),
    },
    {
      key: 'ioredisAuto',
      label: 'ioredis 5 + autoPipelining',
      get: (t) => auto.getSessionWithFallback(t),
      set: (h, d) => auto.setSession(h, d),
      close: async () => autoClient.disconnect(),
    },
  ];
  await Promise.all([plainClient.ping(), autoClient.ping()]);
  return { contenders, loaderCalls };
}

// Each contender writes its own tokens through its own setSession (the contenders share the
// `session:` namespace, so they must not overwrite each other's rows).
async function seed(contenders, count) {
  const expiresAt = new Date(Date.now() + 2 * 3600 * 1000).toISOString(); // TTL = 1 h
  for (const c of contenders) {
    c.tokens = [];
    c.rows = [];
    for (let i = 0; i < count; i++) {
      c.tokens.push(`${c.key}.${i}.${crypto.randomBytes(24).toString('base64url')}`);
      c.rows.push(sessionRow(i, expiresAt));
    }
    const stored = await Promise.all(c.tokens.map((t, i) => c.set(hashToken(t), c.rows[i])));
    assert.ok(stored.every((x) => x === true), `${c.label}: setSession did not answer true for every row`);
  }
  return Buffer.byteLength(JSON.stringify(contenders[0].rows[0]));
}

// Before timing: every contender answers every one of its tokens with exactly its row plus
// `source: 'cache'`, and what sits in Redis is the same for all (key = session:sha256(token),
// JSON, TTL ≤ 1 h, listed in the user's set).
async function verify(contenders, admin, loaderCalls) {
  const ourHash = require('../index.js').hashToken;
  for (const c of contenders) {
    const answers = await Promise.all(c.tokens.map((t) => c.get(t)));
    answers.forEach((a, i) => {
      assert.deepStrictEqual(a, { ...c.rows[i], source: 'cache' }, `${c.label}: wrong answer for token #${i}`);
    });
    for (let i = 0; i < c.tokens.length; i += 97) {
      const hash = hashToken(c.tokens[i]);
      assert.strictEqual(ourHash(c.tokens[i]), hash, 'hashToken differs from node:crypto SHA-256 hex');
      const [json, pttl, member] = await Promise.all([
        admin.get(`session:${hash}`),
        admin.pttl(`session:${hash}`),
        admin.sismember(`session:user:${c.rows[i].user_id}`, hash),
      ]);
      assert.deepStrictEqual(JSON.parse(json), c.rows[i], `${c.label}: stored JSON differs`);
      assert.ok(pttl > 3500000 && pttl <= 3600000, `${c.label}: TTL ${pttl} ms is not about 1 h`);
      assert.strictEqual(member, 1, `${c.label}: session not in its user's set`);
    }
  }
  for (const c of contenders) {
    assert.strictEqual(loaderCalls[c.key], 0, `${c.label}: the loader was called on a hit`);
  }
}

// ---------------------------------------------------------------------------------------------
// The phases

async function measurePhase({ name, contenders, admin, runs, runOne }) {
  const results = Object.fromEntries(contenders.map((c) => [c.key, { warmup: null, runs: [] }]));
  for (let round = 0; round <= runs; round++) {
    for (const c of contenders) {
      if (typeof global.gc === 'function') global.gc();
      await sleep(50);
      const before = await redisCounters(admin);
      const cpu0 = process.cpuUsage();
      const r = await runOne(c);
      const cpu = process.cpuUsage(cpu0);
      const after = await redisCounters(admin);
      if (r.errors > 0) throw new Error(`${c.label}: ${r.errors} calls failed in ${name}: ${r.firstError && r.firstError.message}`);
      if (r.bad > 0) throw new Error(`${c.label}: ${r.bad} answers were not cache hits in ${name}`);
      const run = {
        calls: r.calls,
        ms: Math.round(r.ms * 10) / 10,
        opsPerSec: Math.round(r.opsPerSec),
        timedOut: r.timedOut,
        // Every call must have been one GET on the server (nothing answered from process memory).
        redisGetsPerCall: Math.round(((after.gets - before.gets) / r.calls) * 1000) / 1000,
        nodeCpuUsPerCall: Math.round(((cpu.user + cpu.system) / r.calls) * 100) / 100,
        redisCpuUsPerCall: Math.round(((after.cpuMs - before.cpuMs) * 1000 / r.calls) * 100) / 100,
      };
      if (Math.abs(run.redisGetsPerCall - 1) > 0.01) {
        throw new Error(`${c.label}: ${run.redisGetsPerCall} Redis GETs per call in ${name}; expected exactly one`);
      }
      if (round === 0) results[c.key].warmup = run;
      else results[c.key].runs.push(run);
      const tag = round === 0 ? 'warm-up' : `run ${round}/${runs}`;
      process.stderr.write(
        `  ${name.padEnd(14)} ${tag.padEnd(9)} ${c.label.padEnd(27)} ${fmtInt(run.opsPerSec).padStart(9)} ops/s`
        + `  (${fmtInt(run.calls)} calls, ${run.ms} ms${run.timedOut ? ', stopped by time' : ''})\n`,
      );
    }
  }
  for (const c of contenders) {
    const res = results[c.key];
    const ops = res.runs.map((r) => r.opsPerSec);
    res.medianOpsPerSec = Math.round(median(ops));
    res.minOpsPerSec = Math.min(...ops);
    res.maxOpsPerSec = Math.max(...ops);
    res.medianNodeCpuUsPerCall = median(res.runs.map((r) => r.nodeCpuUsPerCall));
    res.medianRedisCpuUsPerCall = median(res.runs.map((r) => r.redisCpuUsPerCall));
    res.redisGetsPerCall = median(res.runs.map((r) => r.redisGetsPerCall));
  }
  const best = results.ioredis.medianOpsPerSec >= results.ioredisAuto.medianOpsPerSec ? 'ioredis' : 'ioredisAuto';
  // The same ratio taken within each round (the three runs of a round are seconds apart), then
  // the median: less sensitive to the load of a shared machine drifting over minutes.
  const paired = results.ours.runs.map(
    (r, i) => r.opsPerSec / Math.max(results.ioredis.runs[i].opsPerSec, results.ioredisAuto.runs[i].opsPerSec),
  );
  return {
    contenders: results,
    bestIoredis: best,
    ratioOursToBestIoredis: Math.round((results.ours.medianOpsPerSec / results[best].medianOpsPerSec) * 1000) / 1000,
    pairedRatiosOursToBestIoredis: paired.map((x) => Math.round(x * 1000) / 1000),
    medianPairedRatioOursToBestIoredis: Math.round(median(paired) * 1000) / 1000,
    ratioOursToIoredis: Math.round((results.ours.medianOpsPerSec / results.ioredis.medianOpsPerSec) * 1000) / 1000,
    ratioOursToIoredisAuto: Math.round((results.ours.medianOpsPerSec / results.ioredisAuto.medianOpsPerSec) * 1000) / 1000,
  };
}

function printTable(out, contenders) {
  const phases = [
    [`${out.config.inFlight} in flight`, out.phases.concurrent],
    ['1 in flight', out.phases.sequential],
  ];
  const lines = [];
  lines.push('');
  lines.push(
    `Session hits: getSessionWithFallback(token), ${fmtInt(out.config.tokens)} tokens × ${out.sessionBytes} B JSON, `
    + `Redis ${out.machine.redis} on 127.0.0.1`,
  );
  lines.push(
    `${out.machine.cpus} × ${out.machine.cpuModel}, Node ${out.machine.node}, ioredis ${out.machine.ioredis}; `
    + `median of ${out.config.runs} alternating runs after 1 warm-up each; load average ${out.machine.loadavgStart.join(' ')} → ${out.machine.loadavgEnd.join(' ')}`,
  );
  for (const [title, phase] of phases) {
    lines.push('');
    lines.push(
      `${title.padEnd(28)} ${'median ops/s'.padStart(12)}  ${'min … max'.padStart(19)}  ${'node µs/call'.padStart(12)}  ${'redis µs/call'.padStart(13)}`,
    );
    for (const c of contenders) {
      const r = phase.contenders[c.key];
      lines.push(
        `${c.label.padEnd(28)} ${fmtInt(r.medianOpsPerSec).padStart(12)}  ${`${fmtInt(r.minOpsPerSec)} … ${fmtInt(r.maxOpsPerSec)}`.padStart(19)}`
        + `  ${r.medianNodeCpuUsPerCall.toFixed(2).padStart(12)}  ${r.medianRedisCpuUsPerCall.toFixed(2).padStart(13)}`,
      );
    }
    const best = contenders.find((c) => c.key === phase.bestIoredis);
    lines.push(
      `ours / best ioredis (${best.label}): ${fmtRatio(phase.ratioOursToBestIoredis)}`
      + `   (per round, ours / best of that round: median ${fmtRatio(phase.medianPairedRatioOursToBestIoredis)}, `
      + `${phase.pairedRatiosOursToBestIoredis.map((x) => x.toFixed(2)).join(' ')})`,
    );
  }
  lines.push('');
  lines.push('node µs/call: CPU time of the whole Node process (all threads) per call; redis µs/call: redis-server CPU per call.');
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  // The whole run is bounded: every measured run stops after maxRunMs, and this watchdog ends
  // the process (the redis-server is killed on exit) if anything else hangs. It never keeps
  // the process alive by itself.
  const budgetMs = (opts.runs + 1) * 3 * 2 * opts.maxRunMs + 120000;
  const watchdog = setTimeout(() => {
    console.error(`session benchmark: still running after ${budgetMs} ms; giving up`);
    process.exit(2);
  }, budgetMs);
  watchdog.unref();

  const loadavgStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const redis = await startBenchRedis();
  const admin = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: false });
  admin.on('error', () => {});
  let contenders = [];
  try {
    const made = await makeContenders(redis.url, redis.port);
    contenders = made.contenders;
    const sessionBytes = await seed(contenders, opts.tokens);
    await verify(contenders, admin, made.loaderCalls);
    process.stderr.write(`seeded and verified ${fmtInt(opts.tokens)} sessions per contender (${sessionBytes} B JSON each)\n`);

    const concurrent = await measurePhase({
      name: `${opts.inFlight} in flight`,
      contenders,
      admin,
      runs: opts.runs,
      runOne: (c) => runConcurrent(c.get, c.tokens, opts.calls, opts.inFlight, opts.maxRunMs),
    });
    const sequential = await measurePhase({
      name: '1 in flight',
      contenders,
      admin,
      runs: opts.runs,
      runOne: (c) => runSequential(c.get, c.tokens, opts.seqCalls, opts.maxRunMs),
    });
    for (const c of contenders) {
      assert.strictEqual(made.loaderCalls[c.key], 0, `${c.label}: the loader was called during the benchmark`);
    }

    const cpus = os.cpus();
    const out = {
      benchmark: 'session-hits',
      description: 'getSessionWithFallback(token) cache hits; each contender seeds its own tokens via its own setSession',
      date: new Date().toISOString(),
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0] ? cpus[0].model.trim() : 'unknown',
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        node: process.version,
        redis: redis.version,
        ioredis: require('ioredis/package.json').version,
        loadavgStart,
        loadavgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
      config: {
        tokens: opts.tokens,
        inFlight: opts.inFlight,
        callsPerRun: opts.calls,
        sequentialCallsPerRun: opts.seqCalls,
        runs: opts.runs,
        warmupRuns: 1,
        maxRunMs: opts.maxRunMs,
        order: 'alternating: ' + contenders.map((c) => c.key).join(', ') + ', repeated',
      },
      sessionBytes,
      contenders: Object.fromEntries(contenders.map((c) => [c.key, c.label])),
      phases: { concurrent, sequential },
    };
    printTable(out, contenders);
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    fs.writeFileSync(opts.out, JSON.stringify(out, null, 2) + '\n');
    console.log(`\nresults written to ${path.relative(process.cwd(), opts.out) || opts.out}`);
  } finally {
    for (const c of contenders) await c.close();
    admin.disconnect();
    await redis.stop();
  }

  // Everything is closed: the process must now exit by itself. If it does not, say what
  // keeps it alive (this timer is unref'd, so it only fires in that case).
  setTimeout(() => {
    console.error('session benchmark: the process did not exit; still active:', process.getActiveResourcesInfo());
    process.exit(3);
  }, 10000).unref();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exitCode = 1;
});
