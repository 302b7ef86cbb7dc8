'use strict';
// The rules shared by Rust and JS (src/rules.rs → lib/rules.js): JS's view is the binding's,
// the places that used to spell them agree with them, and the permission rules of Rust
// (Snapshot, checked against the same table by a Rust unit test) and of JS agree.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const native = require('../binding.js');
const rules = require('../lib/rules');
const { isBackendFailure } = require('../lib/errors');
const { allowsModule, allowsPage, DEFAULT_SUPER_ROLES } = require('../lib/permissions');
const { DEFAULT_LIMITS } = require('../lib/rate_limit');
const { compile, hasModule, hasPage } = require('../lib/near_l1');
const { createCache, hashToken } = require('..');

const TABLE = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'permission_rules.json'), 'utf8'));

function assertDeepFrozen(v, where) {
  if (v === null || typeof v !== 'object') return;
  assert.ok(Object.isFrozen(v), `${where} is frozen`);
  for (const k of Object.keys(v)) assertDeepFrozen(v[k], `${where}.${k}`);
}

describe('shared rules: lib/rules.js is the binding', () => {
  it('RULES equals native.rules(), every value is frozen, and the named exports are its fields', () => {
    const fresh = native.rules();
    assert.deepEqual(rules.RULES, fresh);
    assertDeepFrozen(rules, 'rules');
    assert.throws(() => {
      rules.CODES.disabled = 'x';
    }, TypeError);
    assert.equal(rules.CODES, rules.RULES.errorCodes);
    assert.deepEqual(rules.CHANNELS, [rules.CHANNEL.permissions, rules.CHANNEL.sessions, rules.CHANNEL.cache]);
    assert.deepEqual(
      Object.entries(rules.DEFAULT_LIMITS).map(([endpoint, l]) => ({ endpoint, ...l })),
      fresh.defaultRateLimits,
    );
    console.log(`# rules: ${Object.keys(fresh.errorCodes).length} error codes (${fresh.backendFailureCodes.length} back-end failures), ${fresh.channels.length} channels, ${fresh.defaultRateLimits.length} default limits, super roles ${JSON.stringify(fresh.defaultSuperRoles)}`);
  });

  it('the back-end failures are one set: isBackendFailure answers exactly the codes Rust marks, ECACHEDISABLED included', () => {
    const codes = Object.values(rules.CODES);
    assert.equal(new Set(codes).size, codes.length, 'codes are distinct');
    for (const code of rules.BACKEND_CODES) assert.ok(codes.includes(code), `${code} is a known code`);
    for (const code of codes) assert.equal(isBackendFailure({ code }), rules.BACKEND_CODES.includes(code), code);
    assert.ok(isBackendFailure({ code: 'ECACHEDISABLED' }));
    for (const input of ['ERR_INVALID_ARG', 'ERR_VALUE_TOO_LARGE', 'ERR_OUT_OF_RANGE']) assert.equal(isBackendFailure({ code: input }), false, input);
    assert.equal(isBackendFailure(null), false);
  });

  it('errors raised natively carry codes of the table, and their class follows it', async () => {
    assert.throws(() => native.sessionKey(''), (e) => e instanceof TypeError && e.code === rules.CODES.invalidArg && !isBackendFailure(e));
    assert.throws(() => hashToken('x'.repeat(rules.SESSION_MAX_TOKEN_BYTES + 1)), (e) => e instanceof RangeError && e.code === rules.CODES.valueTooLarge && !isBackendFailure(e));
    assert.equal(hashToken('x'.repeat(rules.SESSION_MAX_TOKEN_BYTES)).length, 64);
    // No back end configured: every operation fails with ECACHEDISABLED, which the façade
    // handles as a back-end failure (the loader answers; an error is counted), never a throw.
    const disabled = createCache({ url: '', loaders: { session: async () => ({ userId: 1 }) } });
    try {
      assert.equal((await disabled.sessionCache.getSessionWithFallback('tok')).userId, 1);
      const r = await disabled.distributedLock.acquire('rules', 1);
      assert.equal(r.code, rules.CODES.disabled);
      assert.ok(disabled.stats().session.errors >= 1, 'counted as an error');
    } finally {
      await disabled.shutdown();
    }
  });

  it('the bounds JS applies are the native ones: lock TTL, session token length', async () => {
    const cache = createCache({ url: 'memory://rules-bounds', loaders: { session: async () => ({ userId: 2 }) } });
    try {
      const maxSec = rules.LOCK_MAX_TTL_MS / 1000;
      const held = await cache.distributedLock.acquire('rules', 'max', { ttlSec: maxSec });
      assert.equal(held.acquired, true);
      await assert.rejects(cache.distributedLock.acquire('rules', 'over', { ttlSec: maxSec + 1 }), (e) => e instanceof RangeError && e.code === rules.CODES.outOfRange);
      // One byte over the native bound: no session, the loader is not asked.
      assert.equal(await cache.sessionCache.getSessionWithFallback('x'.repeat(rules.SESSION_MAX_TOKEN_BYTES + 1)), null);
      assert.equal((await cache.sessionCache.getSessionWithFallback('x'.repeat(rules.SESSION_MAX_TOKEN_BYTES))).userId, 2);
      // The channels JS accepts are the native ones.
      for (const ch of rules.CHANNELS) cache.pubsub.onMessage(ch, () => {})();
      assert.throws(() => cache.pubsub.onMessage('other:invalidate', () => {}), TypeError);
    } finally {
      await cache.shutdown();
    }
  });

  it('the copies lib/rate_limit.js and lib/permissions.js still hold equal the rules', () => {
    assert.deepEqual(DEFAULT_LIMITS, rules.DEFAULT_LIMITS);
    assert.deepEqual(DEFAULT_SUPER_ROLES, rules.DEFAULT_SUPER_ROLES);
  });
});

describe('shared rules: the permission table (also read by the Rust unit test of Snapshot)', () => {
  it('lib/permissions.js (loader path) and lib/near_l1.js (L1 hits) answer every case as the table says', () => {
    let checks = 0;
    for (const c of TABLE.cases) {
      const l1 = compile(JSON.stringify(c.snapshot), c.isSuper, Infinity);
      for (const [module, want] of Object.entries(c.modules)) {
        assert.equal(allowsModule(c.snapshot, module, c.superRoles), want, `${c.name}: module ${module} (permissions.js)`);
        assert.equal(hasModule(l1, module), want, `${c.name}: module ${module} (near_l1.js)`);
        checks += 2;
      }
      for (const [page, action, want] of c.pages) {
        assert.equal(allowsPage(c.snapshot, page, action, c.superRoles), want, `${c.name}: ${page} ${action} (permissions.js)`);
        assert.equal(hasPage(l1, page, action), want, `${c.name}: ${page} ${action} (near_l1.js)`);
        checks += 2;
      }
    }
    console.log(`# permission table: ${TABLE.cases.length} cases, ${checks} JS checks`);
  });

  it('through a memory:// cache (Rust near cache, then the JS L1) every case answers as the table says', async () => {
    const caches = new Map();
    try {
      for (const [i, c] of TABLE.cases.entries()) {
        const key = JSON.stringify(c.superRoles);
        if (!caches.has(key)) caches.set(key, createCache({ url: `memory://rules-perm-${caches.size}`, superRoles: c.superRoles, nearCacheTtlMs: 5000 }));
        const pc = caches.get(key).permissionCache;
        const user = `rules${i}`;
        assert.equal(await pc.setUserPermissions(user, c.snapshot), true);
        // Twice: the first answer fills the near caches, the second is served from them.
        for (let round = 0; round < 2; round++) {
          for (const [module, want] of Object.entries(c.modules)) assert.equal(await pc.hasModulePermission(user, module), want, `${c.name}: module ${module} (round ${round})`);
          for (const [page, action, want] of c.pages) assert.equal(await pc.hasPagePermission(user, page, action), want, `${c.name}: ${page} ${action} (round ${round})`);
        }
      }
    } finally {
      for (const c of caches.values()) await c.shutdown();
    }
  });
});

describe('test hooks: only in the test build', () => {
  it('the committed binding.js and binding.d.ts name no hook; the build under test has each', () => {
    const { NAMES } = require('./helpers/hooks');
    for (const f of ['binding.js', 'binding.d.ts']) {
      const text = fs.readFileSync(path.join(__dirname, '..', f), 'utf8');
      for (const name of NAMES) assert.equal(text.includes(name), false, `${f} names ${name}`);
    }
    for (const name of NAMES) assert.equal(typeof native[name], 'function', `${name} (build with npm run build:test)`);
  });
});
