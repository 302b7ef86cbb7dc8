'use strict';
// permissionCache against a real redis-server and against memory://: every behaviour of
// API.md, plus the near cache (trusted only while subscribed, bounded, short TTL).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache, permUserKey, permRoleKey } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep, freePort } = require('./helpers/redis');

const uid = () => `u${crypto.randomBytes(6).toString('hex')}`;

async function rejectsWith(promise, Class, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    return true;
  });
}

// The "database" behind the loaders, counting its calls.
function makeDb() {
  const db = { users: new Map(), roles: new Map(), userCalls: 0, roleCalls: 0, lastRole: undefined };
  db.loaders = {
    userPermissions: async (userId, role) => {
      db.userCalls++;
      db.lastRole = role;
      await sleep(10);
      const s = db.users.get(String(userId));
      return s ? structuredClone(s) : null;
    },
    rolePermissions: async (roleId) => {
      db.roleCalls++;
      await sleep(10);
      const s = db.roles.get(String(roleId));
      return s ? structuredClone(s) : null;
    },
  };
  return db;
}

const CLERK = { role: 'CLERK', modules: ['INVENTORY', 'REPORTS'], pages: { 'inventory-items': ['view', 'edit'], dashboard: ['*'] } };

for (const [name, make] of BACKENDS) {
  describe(`permissionCache on ${name}`, () => {
    let backend;
    let cache; // near cache on, subscribed
    let plain; // not subscribed: never uses its near cache
    let db;

    before(async () => {
      backend = await make();
      db = makeDb();
      cache = createCache({ url: backend.url, loaders: db.loaders, nearCacheTtlMs: 5000 });
      plain = createCache({ url: backend.url, loaders: db.loaders });
      assert.equal(await cache.pubsub.subscribe(), true);
    });
    after(async () => {
      await cache.shutdown();
      await plain.shutdown();
      await backend.close();
    });

    it('setUserPermissions stores JSON under perm:user:{id} for 5 minutes by default', async () => {
      const u = uid();
      assert.equal(await plain.permissionCache.setUserPermissions(u, CLERK), true);
      assert.deepEqual(await plain.permissionCache.getUserPermissions(u), CLERK);
      const ttl = await backend.pttl(permUserKey(u));
      assert.ok(ttl > 295_000 && ttl <= 300_000, `ttl ${ttl}`);
    });

    it('a user TTL from 60 s to 5 min is honoured; outside it is a RangeError and nothing is written', async () => {
      const u = uid();
      assert.equal(await plain.permissionCache.setUserPermissions(u, CLERK, 60), true);
      const ttl = await backend.pttl(permUserKey(u));
      assert.ok(ttl > 55_000 && ttl <= 60_000, `ttl ${ttl}`);
      const before = (await backend.keys()).sort();
      for (const bad of [59, 301, 0, -1, NaN, Infinity]) {
        await rejectsWith(plain.permissionCache.setUserPermissions(uid(), CLERK, bad), RangeError, 'ERR_OUT_OF_RANGE');
      }
      await rejectsWith(plain.permissionCache.setUserPermissions(uid(), CLERK, '60'), TypeError, 'ERR_INVALID_ARG');
      assert.deepEqual((await backend.keys()).sort(), before);
    });

    it('role snapshots live under perm:role:{id} for 5 minutes', async () => {
      const r = uid();
      assert.equal(await plain.permissionCache.setRolePermissions(r, { modules: ['HR'] }), true);
      assert.deepEqual(await plain.permissionCache.getRolePermissions(r), { modules: ['HR'] });
      const ttl = await backend.pttl(permRoleKey(r));
      assert.ok(ttl > 295_000 && ttl <= 300_000, `ttl ${ttl}`);
      assert.equal(await plain.permissionCache.getRolePermissions(uid()), null);
    });

    it('getUserPermissionsWithFallback: a miss asks the loader with (userId, role), caches, says database', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      db.userCalls = 0;
      const first = await plain.permissionCache.getUserPermissionsWithFallback(u, 'SUPER_ADMIN');
      assert.deepEqual(first, { ...CLERK, source: 'database' });
      assert.equal(db.userCalls, 1);
      assert.equal(db.lastRole, 'SUPER_ADMIN');
      const second = await plain.permissionCache.getUserPermissionsWithFallback(u);
      assert.deepEqual(second, { ...CLERK, source: 'cache' });
      assert.equal(db.userCalls, 1);
      assert.deepEqual(await plain.permissionCache.getUserPermissions(u), CLERK);
      assert.equal(await plain.permissionCache.getUserPermissionsWithFallback(uid()), null, 'unknown user');
    });

    it('50 concurrent misses of one user make exactly one loader call', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      db.userCalls = 0;
      const all = await Promise.all(Array.from({ length: 50 }, () => plain.permissionCache.getUserPermissionsWithFallback(u)));
      assert.equal(db.userCalls, 1);
      for (const s of all) assert.deepEqual(s.modules, CLERK.modules);
      all[0].modules.push('X');
      assert.notDeepEqual(all[1].modules, all[0].modules, 'each caller gets its own object');
    });

    it('getRolePermissionsWithFallback loads through loaders.rolePermissions once, then serves the cache', async () => {
      const r = uid();
      db.roles.set(r, { modules: ['FINANCE'] });
      db.roleCalls = 0;
      const [a, b] = await Promise.all([
        plain.permissionCache.getRolePermissionsWithFallback(r),
        plain.permissionCache.getRolePermissionsWithFallback(r),
      ]);
      assert.equal(a.source, 'database');
      assert.equal(b.source, 'database');
      assert.equal(db.roleCalls, 1);
      assert.deepEqual(await plain.permissionCache.getRolePermissionsWithFallback(r), { modules: ['FINANCE'], source: 'cache' });
      assert.equal(db.roleCalls, 1);
    });

    for (const [label, pick] of [['near cache', () => cache], ['no near cache', () => plain]]) {
      it(`hasModulePermission and hasPagePermission follow the rules (${label})`, async () => {
        const c = pick().permissionCache;
        const u = uid();
        db.users.set(u, CLERK);
        for (let round = 0; round < 3; round++) {
          assert.equal(await c.hasModulePermission(u, 'INVENTORY'), true);
          assert.equal(await c.hasModulePermission(u, 'PAYROLL'), false);
          assert.equal(await c.hasPagePermission(u, 'inventory-items', 'edit'), true);
          assert.equal(await c.hasPagePermission(u, 'inventory-items', 'delete'), false);
          assert.equal(await c.hasPagePermission(u, 'dashboard', 'anything'), true, "'*' in a page's list");
          assert.equal(await c.hasPagePermission(u, 'payroll', 'view'), false);
          assert.equal(await c.hasPagePermission(u, 'constructor', 'view'), false, 'no prototype lookups');
        }
        const star = uid();
        db.users.set(star, { role: 'MANAGER', modules: ['*'], pages: {} });
        const boss = uid();
        db.users.set(boss, { role: 'SUPER_ADMIN', modules: [], pages: {} });
        for (let round = 0; round < 3; round++) {
          assert.equal(await c.hasModulePermission(star, 'ANYTHING'), true, "'*' in modules");
          assert.equal(await c.hasPagePermission(star, 'p', 'view'), false, "'*' in modules grants modules only");
          assert.equal(await c.hasModulePermission(boss, 'ANYTHING'), true, 'super role');
          assert.equal(await c.hasPagePermission(boss, 'any-page', 'delete'), true, 'super role');
        }
        const nobody = uid();
        assert.equal(await c.hasModulePermission(nobody, 'INVENTORY'), false, 'no snapshot anywhere');
      });
    }

    it('superRoles replaces the default super role', async () => {
      const custom = createCache({ url: backend.url, loaders: db.loaders, superRoles: ['OWNER'] });
      try {
        await custom.pubsub.subscribe();
        const owner = uid();
        const admin = uid();
        db.users.set(owner, { role: 'OWNER', modules: [] });
        db.users.set(admin, { role: 'SUPER_ADMIN', modules: [] });
        for (let round = 0; round < 3; round++) {
          assert.equal(await custom.permissionCache.hasModulePermission(owner, 'X'), true);
          assert.equal(await custom.permissionCache.hasModulePermission(admin, 'X'), false);
        }
      } finally {
        await custom.shutdown();
      }
    });

    it('the near cache answers repeated checks without the store while subscribed', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      await cache.permissionCache.hasModulePermission(u, 'INVENTORY'); // loads and stores
      await cache.permissionCache.hasModulePermission(u, 'INVENTORY'); // reads the store, fills
      const before = cache.permissionCache.nearCacheStats();
      for (let i = 0; i < 100; i++) assert.equal(await cache.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      const after = cache.permissionCache.nearCacheStats();
      assert.equal(after.hits - before.hits, 100);
      assert.equal(after.trusted, true);
      assert.equal(after.fills, before.fills);
    });

    it('a snapshot changed behind its back is served near for at most nearCacheTtlMs', async () => {
      const short = createCache({ url: backend.url, loaders: db.loaders, nearCacheTtlMs: 300 });
      try {
        await short.pubsub.subscribe();
        const u = uid();
        await plain.permissionCache.setUserPermissions(u, CLERK);
        assert.equal(await short.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
        // A write without invalidation (not broadcast): the near copy is now stale.
        await plain.permissionCache.setUserPermissions(u, { modules: [] });
        const changed = Date.now();
        let answer = true;
        while (answer && Date.now() - changed < 3000) {
          answer = await short.permissionCache.hasModulePermission(u, 'INVENTORY');
          await sleep(20);
        }
        const staleFor = Date.now() - changed;
        assert.equal(answer, false);
        // Bounded by the near TTL (300 ms); the slack is for a loaded machine.
        assert.ok(staleFor <= 300 + 1000, `stale for ${staleFor} ms`);
      } finally {
        await short.shutdown();
      }
    });

    it('an instance that is not subscribed never answers from its near cache', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 5; i++) await plain.permissionCache.hasModulePermission(u, 'INVENTORY');
      const s = plain.permissionCache.nearCacheStats();
      assert.equal(s.trusted, false);
      assert.equal(s.size, 0);
      assert.equal(s.hits, 0);
    });

    it('nearCacheTtlMs: 0 disables the near cache', async () => {
      const off = createCache({ url: backend.url, loaders: db.loaders, nearCacheTtlMs: 0 });
      try {
        await off.pubsub.subscribe();
        const u = uid();
        db.users.set(u, CLERK);
        for (let i = 0; i < 5; i++) assert.equal(await off.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
        const s = off.permissionCache.nearCacheStats();
        assert.equal(s.enabled, false);
        assert.equal(s.size, 0);
        assert.equal(s.hits, 0);
      } finally {
        await off.shutdown();
      }
    });

    it('the near cache is bounded by nearCacheMax, evicting the oldest entries', async () => {
      const small = createCache({ url: backend.url, loaders: db.loaders, nearCacheMax: 3 });
      try {
        await small.pubsub.subscribe();
        const users = [uid(), uid(), uid(), uid(), uid()];
        for (const u of users) {
          await plain.permissionCache.setUserPermissions(u, CLERK);
          await small.permissionCache.hasModulePermission(u, 'INVENTORY');
        }
        assert.equal(small.permissionCache.nearCacheStats().size, 3);
        const before = small.permissionCache.nearCacheStats().hits;
        await small.permissionCache.hasModulePermission(users[4], 'INVENTORY');
        assert.equal(small.permissionCache.nearCacheStats().hits, before + 1, 'the newest is kept');
        await small.permissionCache.hasModulePermission(users[0], 'INVENTORY');
        assert.equal(small.permissionCache.nearCacheStats().hits, before + 1, 'the oldest was evicted');
      } finally {
        await small.shutdown();
      }
    });

    it('invalidateUserPermissions removes the snapshot, and the next check asks the loader again', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) assert.equal(await cache.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      db.userCalls = 0;
      db.users.set(u, { role: 'CLERK', modules: ['REPORTS'] });
      assert.equal(await cache.permissionCache.invalidateUserPermissions(u), true);
      assert.ok(!(await backend.keys()).includes(permUserKey(u)));
      assert.equal(await cache.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'the local node never waits for its own message');
      assert.equal(db.userCalls, 1);
      assert.equal(await cache.permissionCache.invalidateUserPermissions(uid()), false);
    });

    it('invalidateRolePermissions removes the role snapshot and drops every near user snapshot', async () => {
      const r = uid();
      const u = uid();
      db.users.set(u, CLERK);
      await cache.permissionCache.setRolePermissions(r, { modules: ['HR'] });
      for (let i = 0; i < 3; i++) await cache.permissionCache.hasModulePermission(u, 'INVENTORY');
      assert.ok(cache.permissionCache.nearCacheStats().size > 0);
      assert.equal(await cache.permissionCache.invalidateRolePermissions(r), true);
      assert.equal(await cache.permissionCache.getRolePermissions(r), null);
      assert.equal(cache.permissionCache.nearCacheStats().size, 0);
      assert.equal(await cache.permissionCache.invalidateRolePermissions(r), false);
    });

    it('bad input is refused with a typed error and writes nothing', async () => {
      const before = (await backend.keys()).sort();
      const p = cache.permissionCache;
      for (const bad of ['', '*', 'a*', 'a b', '[x]', 'a?', null, undefined, {}, 1.5]) {
        const Class = TypeError;
        await rejectsWith(p.setUserPermissions(bad, CLERK), Class, 'ERR_INVALID_ARG');
        await rejectsWith(p.getUserPermissions(bad), Class, 'ERR_INVALID_ARG');
        await rejectsWith(p.getUserPermissionsWithFallback(bad), Class, 'ERR_INVALID_ARG');
        await rejectsWith(p.hasModulePermission(bad, 'X'), Class, 'ERR_INVALID_ARG');
        await rejectsWith(p.hasPagePermission(bad, 'p', 'view'), Class, 'ERR_INVALID_ARG');
        await rejectsWith(p.invalidateUserPermissions(bad), Class, 'ERR_INVALID_ARG');
        await rejectsWith(p.setRolePermissions(bad, CLERK), Class, 'ERR_INVALID_ARG');
        await rejectsWith(p.invalidateRolePermissions(bad), Class, 'ERR_INVALID_ARG');
      }
      for (const snap of [null, 'x', 5, [1], { modules: 'X' }, { pages: [] }, { pages: null }]) {
        await rejectsWith(p.setUserPermissions(uid(), snap), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(p.setRolePermissions(uid(), snap), TypeError, 'ERR_INVALID_ARG');
      }
      await rejectsWith(p.hasModulePermission(uid(), 5), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(p.hasPagePermission(uid(), 'p', null), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(p.setUserPermissions(uid(), { modules: ['x'.repeat(513 * 1024)] }), RangeError, 'ERR_VALUE_TOO_LARGE');
      assert.deepEqual((await backend.keys()).sort(), before);
    });
  });
}

describe('permissionCache options and failure', () => {
  it('bad near-cache options are refused with typed errors', () => {
    const url = 'memory://opts';
    for (const [opts, Class, code] of [
      [{ nearCacheTtlMs: -1 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ nearCacheTtlMs: 60_001 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ nearCacheTtlMs: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ nearCacheTtlMs: '5' }, TypeError, 'ERR_INVALID_ARG'],
      [{ nearCacheMax: 0 }, RangeError, 'ERR_OUT_OF_RANGE'],
      [{ superRoles: 'SUPER_ADMIN' }, TypeError, 'ERR_INVALID_ARG'],
      [{ superRoles: [''] }, TypeError, 'ERR_INVALID_ARG'],
    ]) {
      assert.throws(() => createCache({ url, ...opts }), (err) => err instanceof Class && err.code === code, JSON.stringify(opts));
    }
  });

  it('Redis down: the loaders answer every read, and nothing throws', async () => {
    const db = makeDb();
    const u = uid();
    db.users.set(u, CLERK);
    db.roles.set('r1', { modules: ['HR'] });
    const port = await freePort();
    const down = createCache({ url: `redis://127.0.0.1:${port}`, loaders: db.loaders, commandTimeoutMs: 300, connectTimeoutMs: 300 });
    try {
      assert.equal(await down.pubsub.subscribe(), false);
      assert.deepEqual(await down.permissionCache.getUserPermissionsWithFallback(u), { ...CLERK, source: 'database' });
      assert.equal(await down.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      assert.equal(await down.permissionCache.hasModulePermission(u, 'PAYROLL'), false);
      assert.equal(await down.permissionCache.hasPagePermission(u, 'inventory-items', 'view'), true);
      assert.deepEqual(await down.permissionCache.getRolePermissionsWithFallback('r1'), { modules: ['HR'], source: 'database' });
      assert.equal(await down.permissionCache.getUserPermissions(u), null);
      assert.equal(await down.permissionCache.invalidateUserPermissions(u), false);
      assert.ok(down.stats().permission.errors > 0);
      assert.equal(down.permissionCache.nearCacheStats().trusted, false);
    } finally {
      await down.shutdown();
    }
  });

  it('without loaders, a user with no snapshot has no permission (and nothing throws)', async () => {
    const bare = createCache({ url: 'memory://bare' });
    try {
      assert.equal(await bare.permissionCache.hasModulePermission(uid(), 'INVENTORY'), false);
      assert.equal(await bare.permissionCache.hasPagePermission(uid(), 'p', 'view'), false);
      assert.equal(await bare.permissionCache.getUserPermissionsWithFallback(uid()), null);
      assert.equal(await bare.permissionCache.getRolePermissionsWithFallback(uid()), null);
    } finally {
      await bare.shutdown();
    }
    const off = createCache({ url: '' });
    assert.equal(await off.permissionCache.hasModulePermission(uid(), 'INVENTORY'), false);
    await off.shutdown();
  });

  it('without any back end the loaders answer (disabled cache)', async () => {
    const db = makeDb();
    const u = uid();
    db.users.set(u, CLERK);
    const off = createCache({ url: '', loaders: db.loaders });
    assert.equal(await off.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
    assert.equal(await off.pubsub.subscribe(), false);
    assert.equal(await off.pubsub.publishPermissionInvalidation({ type: 'user', userId: 1 }), 0);
    await off.shutdown();
  });
});
