'use strict';
// Fuzz: 10,000 random bad ids and values (wrong types, glob/whitespace/control characters,
// empty and huge strings, bad numbers, bad objects) from a seeded PRNG into every public
// method that takes them → each refused with a TypeError/RangeError carrying a `code`, 0 keys
// written, 0 crashes, 0 unhandled rejections. On redis and on memory://.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const keys = require('../..');
const { createCache } = keys;
const { BACKENDS } = require('../helpers/backends');
const { guardProcess } = require('../helpers/faults');

const guard = guardProcess();
const SEED = Number(process.env.FUZZ_SEED || 0x5eed);
const TOTAL = 10_000;

// mulberry32: a small seeded PRNG (the same inputs on every run).
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeGen(rand) {
  const int = (n) => Math.floor(rand() * n);
  const pick = (arr) => arr[int(arr.length)];
  const SAFE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@/';
  const safe = (n) => {
    let s = '';
    for (let i = 0; i < n; i++) s += SAFE[int(SAFE.length)];
    return s;
  };
  const FORBIDDEN = ['*', '?', '[', ']', ' ', '\t', '\n', '\r', '\0', '\x01', '\x1b', '\x7f', '\u0085', '\u00a0', '\u2028', '\u3000'];
  const circular = () => {
    const o = { user_id: 1 };
    o.self = o;
    return o;
  };
  // A value that is never a valid id (string or safe integer without forbidden characters).
  const badId = () => {
    switch (int(7)) {
      case 0:
        return pick([null, undefined, true, false, {}, [], [1], () => 1, 10n, new Date(), /x/, new Map()]);
      case 1:
        return pick([NaN, Infinity, -Infinity, 1.5, -0.25, 2 ** 60, -(2 ** 60), 1e300, Number.MIN_VALUE]);
      case 2:
      case 3: {
        // one forbidden character somewhere in an otherwise fine id
        const s = safe(int(40));
        const at = int(s.length + 1);
        return s.slice(0, at) + pick(FORBIDDEN) + s.slice(at);
      }
      case 4:
        return '';
      case 5:
        return safe(513 + int(2000)); // over the 512-byte id cap
      default:
        return pick(['*', '**', '?', '[a-z]', 'user:*', '\u0000', 'a\nb', ' ', `${safe(5)}*`]) + (rand() < 0.5 ? '' : safe(3));
    }
  };
  const notObject = () => pick([null, undefined, 1, 'str', true, [], [1, 2], () => 1, 10n]);
  // Never valid session data: not an object, circular, a bad user id, a bad expiry, too big.
  const badSession = () =>
    rand() < 0.3
      ? notObject()
      : pick([
          circular(),
          { user_id: badIdNoUndefined() },
          { userId: badIdNoUndefined() },
          { user_id: 1, expires_at: pick(['not a date', {}, true, NaN, '2024-13-45T99:99']) },
          { user_id: 1, blob: 'x'.repeat(5000 + int(100000)) }, // over maxValueBytes (4096)
        ]);
  // Never a valid permission snapshot: not an object, bad modules/pages, circular, too big.
  const badSnapshot = () =>
    rand() < 0.3
      ? notObject()
      : pick([
          circular(),
          { modules: pick(['x', 1, {}, true]) },
          { modules: [], pages: pick(['p', 1, true, []]) },
          { modules: ['a'], pages: { '/x': pick(['read', 1, {}, null]) } },
          { modules: [], pages: {}, blob: 'y'.repeat(5000 + int(100000)) },
        ]);
  function badIdNoUndefined() {
    let v;
    do v = badId();
    while (v === undefined || v === null);
    return v;
  }
  const trace = { last: [] };
  const traced = (fn) => (...a) => {
    const v = fn(...a);
    trace.last.push(v);
    return v;
  };
  return { int, pick: traced(pick), badId: traced(badId), badIdNoUndefined, badSession: traced(badSession), badSnapshot: traced(badSnapshot), notObject: traced(notObject), safe, trace };
}

// [name, fn(cache, gen)] — every public method with one argument made bad, the others fine.
const TOKEN = 'a'.repeat(64);
const SNAP = { role: 'USER', modules: ['sales'], pages: { '/x': ['read'] } };
const CASES = [
  ['sessionCache.setSession(id)', (c, g) => c.sessionCache.setSession(g.badId(), { user_id: 1 })],
  ['sessionCache.setSession(data)', (c, g) => c.sessionCache.setSession(TOKEN, g.badSession())],
  ['sessionCache.getSession', (c, g) => c.sessionCache.getSession(g.badId())],
  ['sessionCache.getSessionWithFallback', (c, g) => c.sessionCache.getSessionWithFallback(g.pick([null, undefined, 1, {}, [], true, 10n]))],
  ['sessionCache.invalidateSession', (c, g) => c.sessionCache.invalidateSession(g.badId())],
  ['sessionCache.invalidateUserSessions', (c, g) => c.sessionCache.invalidateUserSessions(g.badId())],
  ['sessionCache.getUserSessions', (c, g) => c.sessionCache.getUserSessions(g.badId())],
  ['permissionCache.getUserPermissions', (c, g) => c.permissionCache.getUserPermissions(g.badId())],
  ['permissionCache.setUserPermissions(id)', (c, g) => c.permissionCache.setUserPermissions(g.badId(), SNAP)],
  ['permissionCache.setUserPermissions(snapshot)', (c, g) => c.permissionCache.setUserPermissions('u1', g.badSnapshot())],
  ['permissionCache.setUserPermissions(ttl)', (c, g) => c.permissionCache.setUserPermissions('u1', SNAP, g.pick([0, 59, 301, -1, NaN, Infinity, '60', {}]))],
  ['permissionCache.getUserPermissionsWithFallback', (c, g) => c.permissionCache.getUserPermissionsWithFallback(g.badIdNoUndefined())],
  // the role only reaches the loader (never a key): its type is checked
  ['permissionCache.getUserPermissionsWithFallback(role)', (c, g) => c.permissionCache.getUserPermissionsWithFallback('u1', g.pick([true, {}, [], () => 1, 10n, Symbol('r')]))],
  ['permissionCache.hasModulePermission', (c, g) => c.permissionCache.hasModulePermission(g.badId(), 'sales')],
  ['permissionCache.hasPagePermission', (c, g) => c.permissionCache.hasPagePermission(g.badId(), '/x', 'read')],
  ['permissionCache.invalidateUserPermissions', (c, g) => c.permissionCache.invalidateUserPermissions(g.badId())],
  ['permissionCache.getRolePermissions', (c, g) => c.permissionCache.getRolePermissions(g.badId())],
  ['permissionCache.setRolePermissions(id)', (c, g) => c.permissionCache.setRolePermissions(g.badId(), SNAP)],
  ['permissionCache.setRolePermissions(snapshot)', (c, g) => c.permissionCache.setRolePermissions('r1', g.badSnapshot())],
  ['permissionCache.getRolePermissionsWithFallback', (c, g) => c.permissionCache.getRolePermissionsWithFallback(g.badId())],
  ['permissionCache.invalidateRolePermissions', (c, g) => c.permissionCache.invalidateRolePermissions(g.badId())],
  ['rateLimiter.checkLimit(ip)', (c, g) => c.rateLimiter.checkLimit(g.badId(), 'login')],
  ['rateLimiter.checkLimit(endpoint)', (c, g) => c.rateLimiter.checkLimit('10.0.0.1', g.badId())],
  ['rateLimiter.resetLimit', (c, g) => c.rateLimiter.resetLimit(g.badId(), 'login')],
  ['rateLimiter.resetAllLimitsForIp', (c, g) => c.rateLimiter.resetAllLimitsForIp(g.badId())],
  ['rateLimiter.getIpStatus', (c, g) => c.rateLimiter.getIpStatus(g.badId())],
  ['distributedLock.acquire(resource)', (c, g) => c.distributedLock.acquire(g.badId(), 'x1')],
  ['distributedLock.acquire(id)', (c, g) => c.distributedLock.acquire('task', g.badId())],
  ['distributedLock.acquire(options)', (c, g) => c.distributedLock.acquire('task', 'x1', g.pick([{ ttlSec: 0 }, { ttlSec: -1 }, { ttlSec: NaN }, { ttlSec: 1e9 }, { ttlSec: '5' }, { retries: -1 }, { retries: 1.5 }, { waitMs: -5 }, 'opts', 5]))],
  ['distributedLock.acquireTaskLock', (c, g) => c.distributedLock.acquireTaskLock(g.badId())],
  ['distributedLock.acquirePaymentLock', (c, g) => c.distributedLock.acquirePaymentLock(g.badId())],
  ['distributedLock.release', (c, g) => c.distributedLock.release(g.badId(), 'x1', 'owner')],
  ['distributedLock.release(owner)', (c, g) => c.distributedLock.release('task', 'x1', g.pick([null, undefined, 1, {}, [], true]))],
  ['distributedLock.extend', (c, g) => c.distributedLock.extend('task', g.badId(), 'owner', 5)],
  ['distributedLock.isLocked', (c, g) => c.distributedLock.isLocked(g.badId(), 'x1')],
  ['distributedLock.withLock', (c, g) => c.distributedLock.withLock(g.badId(), 'x1', () => 1)],
  ['distributedLock.mutex', (c, g) => c.distributedLock.mutex(g.badId(), () => 1)],
  ['pubsub.publishCacheInvalidation', (c, g) => c.pubsub.publishCacheInvalidation(g.pick([null, 1, 'str', true, [], 10n, (() => { const o = {}; o.o = o; return o; })()]))],
  ['pubsub.invalidateUserPermissions', (c, g) => c.pubsub.invalidateUserPermissions(g.badId())],
  ['pubsub.invalidateSession', (c, g) => c.pubsub.invalidateSession(g.badId())],
  // exact keys (UNLINK never globs): the types are checked
  ['pubsub.invalidateKeys', (c, g) => c.pubsub.invalidateKeys(g.pick([null, 'k', 1, {}, true, [1, null], [{}], [null], [10n]]))],
  ['pubsub.invalidatePattern', (c, g) => c.pubsub.invalidatePattern(g.pick([null, 1, '', '*', '**', '***', {}, [], 'a\0b', `x${'\n'}*`]))],
  ['sessionKey', (c, g) => keys.sessionKey(g.badId())],
  ['permUserKey', (c, g) => keys.permUserKey(g.badId())],
  ['rateKey', (c, g) => keys.rateKey(g.badId(), 'login')],
  ['lockKey', (c, g) => keys.lockKey('task', g.badId())],
];

const show = (vals) =>
  vals
    .map((v) => {
      if (typeof v === 'bigint') return `${v}n`;
      if (typeof v === 'function') return 'fn';
      try {
        const j = JSON.stringify(v);
        return j === undefined ? String(v) : j.slice(0, 60);
      } catch {
        return '[circular]';
      }
    })
    .join(', ');

// Calls fn; → the error it threw or rejected with, or null if it succeeded.
async function refusal(fn) {
  try {
    await fn();
    return null;
  } catch (err) {
    return err;
  }
}

for (const [name, make] of BACKENDS) {
  describe(`fuzz on ${name}`, () => {
    let backend;
    let cache;
    before(async () => {
      backend = await make();
      cache = createCache({
        url: backend.url,
        maxValueBytes: 4096,
        loaders: {
          session: async () => null,
          userPermissions: async () => SNAP,
          rolePermissions: async () => SNAP,
        },
      });
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    it(`${TOTAL} random bad inputs into every public method: each refused with a code, 0 keys written`, async () => {
      const before = (await backend.keys()).sort();
      const g = makeGen(prng(SEED));
      const perMethod = new Map();
      const failures = [];
      const codes = new Map();
      for (let i = 0; i < TOTAL; i++) {
        const [method, call] = CASES[i % CASES.length];
        g.trace.last = [];
        const err = await refusal(() => call(cache, g));
        perMethod.set(method, (perMethod.get(method) || 0) + 1);
        const ok = err !== null && (err instanceof TypeError || err instanceof RangeError) && typeof err.code === 'string';
        if (!ok) {
          if (failures.length < 10) failures.push(`${method} #${i} ${show(g.trace.last)}: ${err === null ? 'accepted' : `${err.constructor.name} ${err.code} ${err.message}`}`);
        } else {
          codes.set(err.code, (codes.get(err.code) || 0) + 1);
        }
      }
      const after = (await backend.keys()).sort();
      console.log(`# fuzz ${name}: ${TOTAL} inputs over ${perMethod.size} methods, refused ${TOTAL - failures.length}, codes ${JSON.stringify(Object.fromEntries(codes))}, keys written ${after.length - before.length}`);
      assert.deepEqual(failures, [], 'every bad input is refused with a TypeError/RangeError and a code');
      assert.deepEqual(after, before, '0 keys written');
      // still serving after the fuzz
      assert.equal(await cache.sessionCache.setSession(TOKEN, { user_id: 1 }), true);
      assert.equal((await cache.sessionCache.getSession(TOKEN)).user_id, 1);
    });
  });
}

describe('fuzz: process guards', () => {
  it('0 unhandled rejections and 0 uncaught exceptions', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
