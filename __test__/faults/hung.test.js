'use strict';
// Redis SIGSTOPped (a hung server: connections accepted, nothing answered): every service
// call returns within commandTimeoutMs + 50 ms (worst case over 1,000 calls); with the
// circuit open most return at once; reads are answered by the loaders.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('../..');
const { startRedis, sleep } = require('../helpers/redis');
const { guardProcess, timed, waitFor } = require('../helpers/faults');

const guard = guardProcess();
const TIMEOUT = 200;
const CALLS = 1000;
const WAVE = 20;

const SNAP = { role: 'USER', modules: ['sales'], pages: { '/x': ['read'] } };

// The service calls of one request of the ERP: [name, fn(cache, i) → promise, check(result)].
const CALLS_BY_SERVICE = [
  ['getSessionWithFallback', (c, i) => c.getSessionWithFallback(`tok-${i}`), (r) => r && r.source === 'database'],
  ['sessionCache.getSession', (c, i) => c.sessionCache.getSession(`h${i}`), (r) => r === null],
  ['sessionCache.setSession', (c, i) => c.sessionCache.setSession(`h${i}`, { user_id: i }), (r) => r === false],
  ['getUserPermissionsWithFallback', (c, i) => c.permissionCache.getUserPermissionsWithFallback(`u${i}`), (r) => r && r.source === 'database'],
  ['hasModulePermission', (c, i) => c.permissionCache.hasModulePermission(`u${i}`, 'sales'), (r) => r === true],
  ['getRolePermissionsWithFallback', (c, i) => c.permissionCache.getRolePermissionsWithFallback(`r${i}`), (r) => r && r.source === 'database'],
  ['rateLimiter.checkLimit', (c, i) => c.rateLimiter.checkLimit(`10.0.${i % 250}.1`, '/api/x'), (r) => r.allowed === true],
  ['distributedLock.acquire', (c, i) => c.distributedLock.acquire('task', `t${i}`), (r) => r.acquired === false && typeof r.code === 'string'],
  ['distributedLock.isLocked', (c, i) => c.distributedLock.isLocked('task', `t${i}`), (r) => r.locked === false],
  ['pubsub.publishCacheInvalidation', (c, i) => c.pubsub.publishCacheInvalidation({ i }), (r) => r === 0],
];

describe('Redis SIGSTOPped', () => {
  let server;
  let cache;
  before(async () => {
    server = await startRedis();
    cache = createCache({
      url: server.url,
      commandTimeoutMs: TIMEOUT,
      loaders: {
        session: async (token) => ({ user_id: 7, token }),
        userPermissions: async () => SNAP,
        rolePermissions: async () => SNAP,
      },
    });
    assert.equal((await cache.ping()).pong, 'PONG');
  });
  after(async () => {
    await cache.shutdown();
    await server.stop();
  });

  it(`every call of every service returns within commandTimeoutMs + 50 ms over ${CALLS} calls; reads answered by loaders`, async () => {
    server.pause();
    const times = [];
    const wrong = [];
    const perService = new Map();
    try {
      for (let i = 0; i < CALLS; i += WAVE) {
        const wave = [];
        for (let j = i; j < i + WAVE && j < CALLS; j++) {
          const [name, call, check] = CALLS_BY_SERVICE[j % CALLS_BY_SERVICE.length];
          wave.push(
            timed(() => call(cache, j)).then((t) => {
              times.push(t.ms);
              const s = perService.get(name) || { n: 0, max: 0 };
              s.n++;
              s.max = Math.max(s.max, t.ms);
              perService.set(name, s);
              if (t.error || !check(t.value)) wrong.push(`${name}: ${t.error ? `threw ${t.error.code} ${t.error.message}` : JSON.stringify(t.value)}`);
            }),
          );
        }
        await Promise.all(wave);
      }
    } finally {
      server.resume();
    }
    times.sort((a, b) => a - b);
    const worst = times[times.length - 1];
    const p50 = times[Math.floor(times.length / 2)];
    const fast = times.filter((t) => t < 20).length;
    console.log(`# SIGSTOP: ${times.length} calls, worst ${worst.toFixed(1)} ms (bound ${TIMEOUT + 50}), p50 ${p50.toFixed(2)} ms, ${fast} answered in < 20 ms (circuit open)`);
    for (const [name, s] of perService) console.log(`#   ${name}: ${s.n} calls, worst ${s.max.toFixed(1)} ms`);
    assert.equal(times.length, CALLS);
    assert.deepEqual(wrong.slice(0, 5), [], 'every call answers with its fallback');
    assert.ok(worst <= TIMEOUT + 50, `worst call took ${worst.toFixed(1)} ms`);
    assert.ok(fast > CALLS / 2, `only ${fast} calls were answered at once`);
    const st = cache.stats();
    assert.ok(st.session.loaderCalls > 0 && st.permission.loaderCalls > 0);
  });

  it('recovers after SIGCONT: ping closes the circuit and calls reach Redis again', async () => {
    const waited = await waitFor(async () => {
      const p = await cache.ping();
      return p.enabled && p.circuit === 'closed';
    }, { timeoutMs: 10_000, everyMs: 50 });
    console.log(`# SIGSTOP: healthy ${waited.toFixed(0)} ms after SIGCONT`);
    assert.ok(waited >= 0);
    assert.equal(await cache.sessionCache.setSession('after-hang', { user_id: 1 }), true);
    assert.equal((await cache.sessionCache.getSession('after-hang')).user_id, 1);
  });

  it('CLIENT PAUSE (a server that stalls its clients) is bounded the same way', async () => {
    const { clientPause } = require('../helpers/faults');
    await clientPause(server, 1500);
    const t = await timed(() => cache.getSessionWithFallback('paused-token'));
    assert.equal(t.value.source, 'database');
    assert.ok(t.ms <= TIMEOUT + 50, `took ${t.ms.toFixed(1)} ms`);
    console.log(`# CLIENT PAUSE: read answered by the loader in ${t.ms.toFixed(1)} ms`);
    await sleep(1600);
    const ok = await waitFor(async () => (await cache.sessionCache.setSession('after-pause', { user_id: 2 })) === true, { timeoutMs: 10_000, everyMs: 100 });
    assert.ok(ok >= 0, 'writes work again after the pause');
  });

  it('0 unhandled rejections and 0 uncaught exceptions', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
