'use strict';
// A hung TLS server (redis-server SIGSTOPped, rediss:// with the test CA): the pipelined TLS
// transport keeps its deadlines independent of a socket that takes no more bytes, as plain TCP
// does (hardening_transport.test.js): every call settles within commandTimeoutMs + margin and
// falls back, a subscriber's connect within connectTimeoutMs; all is well after SIGCONT.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createCache } = require('../..');
const { startRedis, makePki } = require('../helpers/redis');
const { guardProcess, timed, waitFor, within } = require('../helpers/faults');

const guard = guardProcess();
const TIMEOUT = 200;
const CONNECT_TIMEOUT = 500;
const PASSWORD = 'hung-tls-pa55word';
const BACKEND_CODES = new Set(['ETIMEDOUT', 'ECACHEUNAVAILABLE', 'ERR_REDIS', 'ECLOSED', 'ECACHEDISABLED', 'ECIRCUITOPEN', 'ERR_CACHE_INTERNAL']);
const BLOB = 'x'.repeat(400 * 1024);

describe('a hung TLS server (SIGSTOP) settles every call within commandTimeoutMs + margin', () => {
  let dir;
  let server;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-hungtls-'));
    server = await startRedis({ password: PASSWORD, tls: { pki: makePki(dir) } });
  });
  after(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('20 setSession of 400 KB, 20 getSession, 10,000 checkLimit and a subscribe settle and fall back; healthy after SIGCONT', async () => {
    const opts = { url: `rediss://:${PASSWORD}@127.0.0.1:${server.tlsPort}`, tls: { ca: path.join(dir, 'ca.crt') }, commandTimeoutMs: TIMEOUT, connectTimeoutMs: CONNECT_TIMEOUT };
    const cache = createCache(opts);
    const limiter = createCache(opts);
    const sub = createCache({ ...opts, nodeId: 'sub' });
    const codes = new Map();
    for (const c of [cache, limiter, sub]) c.on('error', (err) => codes.set(err.code, (codes.get(err.code) || 0) + 1));
    try {
      assert.equal((await cache.ping()).pong, 'PONG');
      assert.equal((await limiter.ping()).pong, 'PONG');
      const [w0, c0] = limiter.ctx.bridge.native.transportCounts();
      server.pause();
      let writes, reads, limits, subscribed, ping, startWritesMs, startMs;
      try {
        const w = performance.now();
        writes = Array.from({ length: 20 }, (_, i) => timed(() => cache.sessionCache.setSession(`big-${i}`, { i, blob: BLOB })));
        startWritesMs = performance.now() - w;
        reads = Array.from({ length: 20 }, (_, i) => timed(() => cache.sessionCache.getSession(`big-${i}`)));
        subscribed = timed(() => sub.pubsub.subscribe());
        const t0 = performance.now();
        limits = Array.from({ length: 10000 }, (_, i) => timed(() => limiter.rateLimiter.checkLimit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, '/api/x')));
        startMs = performance.now() - t0;
        writes = await within(Promise.all(writes), 20000, 'setSession');
        reads = await within(Promise.all(reads), 20000, 'getSession');
        limits = await within(Promise.all(limits), 20000, 'checkLimit');
        subscribed = await within(subscribed, 20000, 'subscribe');
        ping = await within(timed(() => cache.ping()), 5000, 'ping');
      } finally {
        server.resume();
      }
      const max = (ts) => Math.max(...ts.map((t) => t.ms));
      const [w1, c1] = limiter.ctx.bridge.native.transportCounts();
      console.log(`# hung TLS server: max settle setSession ${max(writes).toFixed(1)} ms (starting them took ${startWritesMs.toFixed(0)} ms), getSession ${max(reads).toFixed(1)} ms, checkLimit ${max(limits).toFixed(1)} ms (starting the 10,000 took ${startMs.toFixed(0)} ms), subscribe ${subscribed.ms.toFixed(1)} ms → ${subscribed.value}, ping ${ping.ms.toFixed(1)} ms; commandTimeoutMs ${TIMEOUT}, connectTimeoutMs ${CONNECT_TIMEOUT}; limiter pipeline ${w1 - w0} writes / ${c1 - c0} commands; codes ${JSON.stringify(Object.fromEntries(codes))}`);
      for (const t of writes) assert.equal(t.value, false, t.error && t.error.message);
      for (const t of reads) assert.equal(t.value, null, t.error && t.error.message);
      for (const t of limits) assert.equal(t.value && t.value.allowed, true, t.error && t.error.message);
      const bound = TIMEOUT + 500;
      // the writes, reads and subscribe were started before the limiter calls, which kept the
      // JS thread busy for `startMs`: their answers could not be delivered meanwhile
      assert.ok(max(writes) <= bound + startWritesMs + startMs, `setSession settled after ${max(writes)} ms`);
      assert.ok(max(reads) <= bound + startMs, `getSession settled after ${max(reads)} ms`);
      assert.ok(max(limits) <= bound + startMs, `checkLimit settled after ${max(limits)} ms`);
      assert.equal(subscribed.value, false, 'the subscribe failed');
      assert.ok(subscribed.ms <= CONNECT_TIMEOUT + 500 + startMs, `subscribe settled after ${subscribed.ms} ms`);
      assert.equal(ping.value.pong, null);
      assert.ok(ping.ms <= bound, `ping settled after ${ping.ms} ms`);
      assert.ok(c1 - c0 > 0, 'the limiter used the pipelined TLS transport');
      for (const code of codes.keys()) assert.ok(BACKEND_CODES.has(code), code);

      // after SIGCONT: the TLS link is made anew and every service works
      assert.ok(await waitFor(async () => (await cache.ping()).pong === 'PONG', { timeoutMs: 10000 }) >= 0, 'PONG after SIGCONT');
      assert.equal(await cache.sessionCache.setSession('after', { ok: 1 }), true);
      assert.deepEqual(await cache.sessionCache.getSession('after'), { ok: 1 });
      assert.ok(await waitFor(async () => (await limiter.ping()).pong === 'PONG', { timeoutMs: 10000 }) >= 0);
      await limiter.rateLimiter.resetLimit('10.9.9.9', '/api/after');
      const a = await limiter.rateLimiter.checkLimit('10.9.9.9', '/api/after');
      const b = await limiter.rateLimiter.checkLimit('10.9.9.9', '/api/after');
      assert.deepEqual([a.total, b.total], [1, 2], 'the limiter counts in Redis again');
      assert.ok(await waitFor(async () => sub.pubsub.subscribe(), { timeoutMs: 10000, everyMs: 200 }) >= 0, 'subscribes after SIGCONT');
    } finally {
      await cache.shutdown();
      await limiter.shutdown();
      await sub.pubsub.shutdown();
      await sub.shutdown();
    }
  });
});

describe('hung TLS: process guards', () => {
  it('0 unhandled rejections and 0 uncaught exceptions', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
