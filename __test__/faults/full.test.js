'use strict';
// Redis full (maxmemory 1mb + noeviction: writes answer OOM) and the cache stampede.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('../..');
const { startRedis, sleep } = require('../helpers/redis');
const { guardProcess, makeOom, clearOom } = require('../helpers/faults');

const guard = guardProcess();
const SNAP = { role: 'USER', modules: ['sales'], pages: { '/x': ['read'] } };

describe('Redis answering OOM', () => {
  let server;
  let cache;
  let held;
  before(async () => {
    server = await startRedis();
    cache = createCache({
      url: server.url,
      loaders: {
        session: async (token) => ({ user_id: 9, token }),
        userPermissions: async () => SNAP,
      },
    });
    assert.equal(await cache.sessionCache.setSession('stored-before', { user_id: 1 }), true);
    assert.equal(await cache.sessionCache.setSession('to-remove', { user_id: 2 }), true);
    held = await cache.distributedLock.acquire('task', 'held-before', { ttlSec: 60 });
    assert.equal(held.acquired, true);
    await makeOom(server);
  });
  after(async () => {
    await clearOom(server);
    await cache.shutdown();
    await server.stop();
  });

  it('reads fall back, writes report an error (false / error code, counted in stats), nothing unhandled', async () => {
    const errorsBefore = JSON.parse(JSON.stringify(cache.stats()));
    // writes
    assert.equal(await cache.sessionCache.setSession('h-oom', { user_id: 1 }), false);
    assert.equal(await cache.permissionCache.setUserPermissions('u-oom', SNAP), false);
    const lock = await cache.distributedLock.acquire('task', 'oom');
    assert.equal(lock.acquired, false);
    assert.equal(lock.code, 'ERR_REDIS');
    assert.match(lock.error, /OOM/);
    const rate = await cache.rateLimiter.checkLimit('10.1.1.1', '/api/oom');
    assert.equal(rate.allowed, true, 'the limiter fails open');
    // reads: what is stored is still served; misses go to the loaders
    assert.equal((await cache.sessionCache.getSession('stored-before')).user_id, 1);
    const miss = await cache.getSessionWithFallback('tok-oom');
    assert.equal(miss.source, 'database');
    const perm = await cache.permissionCache.getUserPermissionsWithFallback('u-oom2');
    assert.equal(perm.source, 'database');
    assert.equal(await cache.permissionCache.hasModulePermission('u-oom3', 'sales'), true);
    // what frees or needs no memory still works
    assert.equal(await cache.distributedLock.extend('task', 'held-before', held.owner, 30), true);
    assert.equal(await cache.distributedLock.release('task', 'held-before', held.owner), true);
    assert.equal(await cache.sessionCache.invalidateSession('to-remove'), true);
    assert.equal(typeof (await cache.pubsub.publishCacheInvalidation({ oom: true })), 'number');
    const st = cache.stats();
    const grew = (s) => st[s].errors - errorsBefore[s].errors;
    console.log(`# OOM: errors counted session +${grew('session')}, permission +${grew('permission')}, lock +${grew('lock')}, rateLimit +${grew('rateLimit')}; circuit ${(await cache.ping()).circuit}`);
    assert.ok(grew('session') >= 1);
    assert.ok(grew('permission') >= 1);
    assert.ok(grew('lock') >= 1);
    assert.ok(grew('rateLimit') >= 1);
    // An OOM answer is an answer: the circuit stays closed and Redis stays enabled.
    const p = await cache.ping();
    assert.equal(p.circuit, 'closed');
    assert.equal(cache.isEnabled(), true);
  });

  it('writes succeed again once memory is freed', async () => {
    await clearOom(server);
    assert.equal(await cache.sessionCache.setSession('h-after-oom', { user_id: 1 }), true);
  });
});

describe('stampede', () => {
  let server;
  let cache;
  let loaderCalls = 0;
  before(async () => {
    server = await startRedis();
    cache = createCache({
      url: server.url,
      nearCacheTtlMs: 0,
      loaders: {
        userPermissions: async () => {
          loaderCalls++;
          await sleep(50);
          return SNAP;
        },
      },
    });
  });
  after(async () => {
    await cache.shutdown();
    await server.stop();
  });

  it('FLUSHALL, then 500 concurrent getUserPermissionsWithFallback for one user → 1 loader call', async () => {
    await cache.permissionCache.getUserPermissionsWithFallback('hot-user');
    assert.equal(loaderCalls, 1);
    assert.equal((await cache.permissionCache.getUserPermissionsWithFallback('hot-user')).source, 'cache');
    await server.client().flushall();
    loaderCalls = 0;
    const all = await Promise.all(Array.from({ length: 500 }, () => cache.permissionCache.getUserPermissionsWithFallback('hot-user')));
    console.log(`# stampede: 500 concurrent reads after FLUSHALL → ${loaderCalls} loader call(s)`);
    assert.equal(loaderCalls, 1);
    assert.ok(all.every((s) => s.source === 'database' && s.modules[0] === 'sales'));
    // each caller has its own copy
    all[0].modules.push('mutated');
    assert.equal(all[1].modules.length, 1);
    assert.equal((await cache.permissionCache.getUserPermissionsWithFallback('hot-user')).source, 'cache');
  });
});

describe('OOM/stampede: process guards', () => {
  it('0 unhandled rejections and 0 uncaught exceptions', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
