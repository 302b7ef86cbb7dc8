'use strict';
// The latency histogram bisman_cache_operation_duration_seconds (metrics(), collectMetrics()),
// the @bisman/cache/prom-client subpath with the real prom-client, and NODE_DEBUG=bisman-cache
// logging read from a child process's stderr.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('crypto');
const client = require('prom-client');
const cacheModule = require('..');
const { createCache, hashToken } = cacheModule;
const { registerMetrics } = require('@bisman/cache/prom-client');
const { startRedis, freePort } = require('./helpers/redis');

const uid = () => crypto.randomBytes(6).toString('hex');
const H = 'bisman_cache_operation_duration_seconds';

// name{labels} → value, for the histogram's lines of an exposition text.
function histogramLines(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^(${H}_(?:bucket|sum|count))(\\{[^}]*\\}) (\\S+)$`).exec(line);
    if (m) out.set(m[1] + m[2], Number(m[3]));
  }
  return out;
}

describe('latency histogram per operation', () => {
  it('observes every back-end call of getSession and checkLimit: cumulative buckets, +Inf = _count, _sum > 0', async () => {
    const cache = createCache({ url: `memory://h${uid()}` });
    try {
      const N = 60;
      for (let i = 0; i < N; i++) await cache.sessionCache.getSession(hashToken(`t${i}`));
      for (let i = 0; i < 5; i++) await cache.rateLimiter.checkLimit('10.0.0.1', '/api/x');
      const text = cache.metrics();
      assert.match(text, new RegExp(`^# TYPE ${H} histogram$`, 'm'));
      const h = histogramLines(text);
      const sel = 'service="session",operation="getSession"';
      assert.equal(h.get(`${H}_count{${sel}}`), N);
      assert.equal(h.get(`${H}_bucket{${sel},le="+Inf"}`), N);
      assert.ok(h.get(`${H}_sum{${sel}}`) > 0);
      const buckets = [...h].filter(([k]) => k.startsWith(`${H}_bucket{${sel},`));
      assert.equal(buckets.length, 16);
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], 'cumulative');
      const les = buckets.map(([k]) => /le="([^"]+)"/.exec(k)[1]);
      assert.deepEqual(les.slice(0, 3), ['0.0001', '0.00025', '0.0005']);
      assert.equal(h.get(`${H}_count{service="rateLimit",operation="checkLimit"}`), 5);
      // an operation never called has no samples
      assert.equal([...h.keys()].some((k) => k.includes('operation="getUserSessions"')), false);
      const fam = cache.collectMetrics().find((f) => f.name === H);
      assert.equal(fam.type, 'histogram');
      assert.deepEqual(fam.labelNames, ['service', 'operation']);
    } finally {
      await cache.shutdown();
    }
  });

  it('observes calls that failed on the back end too (their fallback answered)', async () => {
    const port = await freePort();
    const cache = createCache({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200, connectTimeoutMs: 200, circuitThreshold: 100 });
    try {
      for (let i = 0; i < 3; i++) assert.equal(await cache.sessionCache.getSession('abc'), null);
      const h = histogramLines(cache.metrics());
      assert.equal(h.get(`${H}_count{service="session",operation="getSession"}`), 3);
      assert.equal(cache.stats().session.errors, 3);
    } finally {
      await cache.shutdown();
    }
  });

  // The overhead figure: a bounded loop (count and time) of awaited getSession calls on
  // memory://, with and without the wrapper's work (the prototype's method leaves ctx.current
  // null: no timing), printed for the record.
  it('costs little per call (printed figure; bounded loop)', async () => {
    const cache = createCache({ url: `memory://o${uid()}` });
    try {
      const sc = cache.sessionCache;
      const plain = Object.getPrototypeOf(sc).getSession;
      const hash = hashToken('x');
      // → CPU ns per call (user + system of this process: less disturbed by other processes than
      // wall time), the median of 5 rounds.
      const run = async (fn) => {
        const rounds = [];
        for (let r = 0; r < 5; r++) {
          const N = 20000;
          const t0 = process.hrtime.bigint();
          const c0 = process.cpuUsage();
          let i = 0;
          for (; i < N && process.hrtime.bigint() - t0 < 2e9; i += 100) {
            const batch = [];
            for (let j = 0; j < 100; j++) batch.push(fn());
            await Promise.all(batch);
          }
          const c = process.cpuUsage(c0);
          rounds.push(((c.user + c.system) * 1000) / i);
        }
        return rounds.sort((a, b) => a - b)[2];
      };
      await run(() => plain.call(sc, hash)); // warm-up
      await run(() => sc.getSession(hash));
      const untimed = await run(() => plain.call(sc, hash));
      const timed = await run(() => sc.getSession(hash));
      console.log(`# getSession on memory:// (CPU, median of 5): ${untimed.toFixed(0)} ns/call unwrapped, ${timed.toFixed(0)} ns/call wrapped and timed (no subscriber)`);
      assert.ok(timed > 0 && untimed > 0);
    } finally {
      await cache.shutdown();
    }
  });
});

describe('@bisman/cache/prom-client', () => {
  it('registerMetrics(registry, { cache }) puts every family, the histogram included, on a prom-client Registry with the live values', async () => {
    const cache = createCache({ url: `memory://p${uid()}` });
    try {
      const registry = new client.Registry();
      const metrics = registerMetrics(registry, { cache });
      assert.equal(metrics.length, cache.collectMetrics().length);
      await cache.sessionCache.getSession(hashToken('a'));
      await cache.rateLimiter.checkLimit('1.2.3.4', '/api/auth/login');
      const text = await registry.metrics();
      assert.match(text, new RegExp(`^# TYPE ${H} histogram$`, 'm'));
      assert.match(text, /^# TYPE bisman_cache_pubsub_lag_milliseconds summary$/m);
      assert.deepEqual(histogramLines(text), histogramLines(cache.metrics()));
      assert.equal(histogramLines(text).get(`${H}_count{service="session",operation="getSession"}`), 1);
      // every sample line of ours is in the registry's text, with the same value
      const ours = cache.metrics().split('\n').filter((l) => l.startsWith('bisman_cache_'));
      const theirs = new Set(text.split('\n'));
      for (const line of ours) assert.ok(theirs.has(line), line);
      await cache.sessionCache.getSession(hashToken('b'));
      assert.equal(histogramLines(await registry.metrics()).get(`${H}_count{service="session",operation="getSession"}`), 2);
      assert.throws(() => registerMetrics(registry, { cache }), /already been registered/);
    } finally {
      await cache.shutdown();
    }
  });

  it("defaults to the module's default instance, refuses what is not a registry or a cache, and imports from ESM", async () => {
    const registry = new client.Registry();
    registerMetrics(registry);
    const text = await registry.metrics();
    assert.match(text, /^bisman_cache_enabled 0$/m);
    assert.deepEqual(text.match(/^# TYPE \S+/gm), cacheModule.collectMetrics().map((f) => `# TYPE ${f.name}`));
    assert.throws(() => registerMetrics({}), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    assert.throws(() => registerMetrics(null), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    assert.throws(() => registerMetrics(new client.Registry(), { cache: {} }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    const esm = await import('@bisman/cache/prom-client');
    assert.equal(esm.registerMetrics, registerMetrics);
  });
});

describe('types of @bisman/cache/prom-client and of the trace context', () => {
  it('compile with a prom-client Registry under tsc --strict, and refuse a misuse', () => {
    const TSC = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
    const project = path.join(__dirname, 'ts-consumer', 'tsconfig.json');
    const dir = fs.mkdtempSync(path.join(__dirname, 'ts-consumer', '.tmp-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'good.ts'),
        "import { Registry } from 'prom-client';\n"
        + "import { registerMetrics } from '@bisman/cache/prom-client';\n"
        + "import { createCache, type OperationTraceContext } from '@bisman/cache';\n"
        + 'const metrics = registerMetrics(new Registry(), { cache: createCache() });\n'
        + "const t: 'counter' | 'gauge' | 'summary' | 'histogram' = metrics[0].type;\n"
        + "const c: OperationTraceContext = { service: 'session', operation: 'getSession', keyFamily: 'session' };\n"
        + 'void [t, c];\n',
      );
      fs.writeFileSync(path.join(dir, 'bad.ts'), "import { registerMetrics } from '@bisman/cache/prom-client';\nregisterMetrics(new Map());\n");
      const cfg = JSON.parse(fs.readFileSync(project, 'utf8'));
      for (const [file, ok] of [['good.ts', true], ['bad.ts', false]]) {
        cfg.files = [file];
        fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(cfg));
        const r = spawnSync(process.execPath, [TSC, '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8', timeout: 120000 });
        if (ok) assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
        else assert.match(r.stdout, /bad\.ts\(2,17\): error TS2741: Property .registerMetric. is missing/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Runs `script` in a child with NODE_DEBUG (or not) → its stderr.
function child(script, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let out = '';
    p.stderr.on('data', (d) => (err += d));
    p.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, err, out });
    });
  });
}

describe('NODE_DEBUG=bisman-cache', () => {
  const token = `secret-token-${uid()}`;
  const password = `pw${uid()}`;

  it('logs creation, the fallback taken, the failure and the open circuit of an unreachable Redis, never its password or the token', async () => {
    const port = await freePort();
    const script = `
      const { createCache } = require('.');
      const cache = createCache({ url: 'redis://erpuser:${password}@127.0.0.1:${port}', commandTimeoutMs: 200, connectTimeoutMs: 200,
        loaders: { session: async () => ({ user_id: 1, expires_at: new Date(Date.now() + 60000).toISOString() }) } });
      (async () => {
        const s = await cache.getSessionWithFallback(${JSON.stringify(token)});
        await new Promise((r) => setTimeout(r, 400));
        await cache.shutdown();
        console.log(s.source);
      })();`;
    const { code, err, out } = await child(script, { NODE_DEBUG: 'bisman-cache' });
    assert.equal(code, 0, err);
    assert.equal(out.trim(), 'database');
    assert.match(err, new RegExp(`BISMAN-CACHE \\d+: cache created for redis://127\\.0\\.0\\.1:${port}\\n`));
    assert.match(err, /BISMAN-CACHE \d+: session: back-end failure \S+ \(.*\); the fallback answered/);
    assert.match(err, /BISMAN-CACHE \d+: circuit open \(back end unavailable: calls fall back\)/);
    assert.match(err, /BISMAN-CACHE \d+: shut down: connections closed/);
    for (const secret of [password, 'erpuser', token, hashToken(token)]) assert.ok(!err.includes(secret), `stderr shows ${secret}`);
  });

  it('logs the circuit closed on a reachable Redis; without NODE_DEBUG nothing is logged', async () => {
    const server = await startRedis({ password });
    try {
      const script = `
        const { createCache } = require('.');
        const cache = createCache({ url: ${JSON.stringify(server.url)} });
        (async () => {
          console.log((await cache.ping()).pong);
          await new Promise((r) => setTimeout(r, 300));
          await cache.shutdown();
        })();`;
      const on = await child(script, { NODE_DEBUG: 'bisman-cache' });
      assert.equal(on.code, 0, on.err);
      assert.equal(on.out.trim(), 'PONG');
      assert.match(on.err, /BISMAN-CACHE \d+: circuit closed \(back end answers\)/);
      assert.ok(!on.err.includes(password));
      const off = await child(script, { NODE_DEBUG: '' });
      assert.equal(off.code, 0, off.err);
      assert.equal(off.out.trim(), 'PONG');
      assert.equal(off.err, '');
    } finally {
      await server.stop();
    }
  });
});
