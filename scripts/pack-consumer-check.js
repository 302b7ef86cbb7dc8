'use strict';
// Run by `npm run test:pack` inside a fresh project that installed the packed tarballs (no Rust
// toolchain on its PATH): the package as a user gets it. CHECK_REDIS_URL: a real redis-server.

const assert = require('node:assert/strict');
const path = require('path');
const crypto = require('crypto');

async function calls(cache, label) {
  const t0 = process.hrtime.bigint();
  const token = crypto.randomBytes(16).toString('hex');
  const hash = cache.hashToken(token);
  assert.equal(await cache.sessionCache.setSession(hash, { user_id: 7, role: 'HUB_INCHARGE', expires_at: new Date(Date.now() + 60000).toISOString() }), true);
  const s = await cache.getSessionWithFallback(token);
  assert.equal(s.user_id, 7);
  assert.equal(s.source, 'cache');
  const r1 = await cache.rateLimiter.checkLimit('10.0.0.1', '/api/auth/login');
  assert.deepEqual([r1.allowed, r1.limit, r1.total], [true, 5, 1]);
  const lock = await cache.distributedLock.acquire('payment', 42);
  assert.equal(lock.acquired, true);
  const busy = await cache.distributedLock.acquire('payment', 42);
  assert.equal(busy.acquired, false);
  assert.equal(await cache.distributedLock.release('payment', 42, lock.owner), true);
  assert.equal(await cache.permissionCache.setUserPermissions(7, { modules: ['INVENTORY'], pages: {} }), true);
  assert.equal(await cache.permissionCache.hasModulePermission(7, 'INVENTORY'), true);
  assert.equal(await cache.permissionCache.hasModulePermission(7, 'REPORTS'), false);
  const ping = await cache.ping();
  assert.equal(ping.pong, 'PONG');
  assert.match(cache.metrics(), /^bisman_cache_hits_total\{service="session"\} 1$/m);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`  ${label}: session set/get (source ${s.source}), rate limit ${r1.total}/${r1.limit}, lock fence ${lock.fence} then busy, permissions, ping ${ping.pong} — ${ms.toFixed(1)} ms`);
}

async function main() {
  const resolved = require.resolve('@bisman/cache');
  assert.ok(resolved.startsWith(path.join(__dirname, 'node_modules')), resolved);
  const cache = require('@bisman/cache');
  // The binary came from the platform package, not from a build.
  const native = Object.keys(require.cache).find((f) => f.endsWith('.node'));
  assert.ok(native && native.includes(path.join('node_modules', '@bisman', 'cache-linux-x64-gnu')), `native module: ${native}`);
  console.log(`  required @bisman/cache from ${path.relative(__dirname, resolved)}; binary ${path.relative(__dirname, native)}`);

  // The drop-in subpaths and ESM give the same singletons.
  for (const [sub, name] of [
    ['services/sessionCache', 'sessionCache'],
    ['services/permissionCache', 'permissionCache'],
    ['services/rateLimiter', 'rateLimiter'],
    ['services/distributedLock', 'distributedLock'],
    ['services/pubsub', 'pubsub'],
  ]) {
    assert.equal(require(`@bisman/cache/${sub}`)[name], cache[name], sub);
  }
  assert.equal(require('@bisman/cache/namespaces').rateKey('1.2.3.4', '/api/auth/login'), 'rate:1.2.3.4:_api_auth_login');
  const esm = await import('@bisman/cache');
  assert.equal(esm.default, cache);
  assert.equal(esm.rateLimiter, cache.rateLimiter);
  const esmSub = await import('@bisman/cache/services/distributedLock');
  assert.equal(esmSub.distributedLock, cache.distributedLock);
  console.log('  subpaths (namespaces, services/*) and ESM import: the same singletons');

  cache.configure({ url: 'memory://pack' });
  await calls(cache, 'memory://');
  await cache.shutdown();

  const url = process.env.CHECK_REDIS_URL;
  assert.ok(url, 'CHECK_REDIS_URL');
  const remote = cache.createCache({ url, keyPrefix: 'pack:' });
  await calls(remote, 'redis-server');
  await remote.shutdown();
  console.log('  install test passed');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
