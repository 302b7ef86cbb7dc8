'use strict';
// The package's entry points by name, as a user's project sees them: a temporary project whose
// node_modules/@bisman/cache is a symlink to this repository. `require` and `import` of the main
// entry and of every drop-in subpath of the ERP's old files give the same singletons, and the
// subpaths' functions work.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const SUBPATHS = {
  namespaces: ['sessionKey', 'sessionUserKey', 'permUserKey', 'permRoleKey', 'rateKey', 'lockKey', 'hashToken', 'KEY_PATTERNS'],
  'services/sessionCache': ['sessionCache', 'setSession', 'getSession', 'getSessionWithFallback', 'invalidateSession', 'invalidateUserSessions', 'getUserSessions', 'SessionCache'],
  'services/permissionCache': ['permissionCache', 'getUserPermissions', 'setUserPermissions', 'getUserPermissionsWithFallback', 'hasModulePermission', 'hasPagePermission', 'getRolePermissions', 'setRolePermissions', 'getRolePermissionsWithFallback', 'invalidateUserPermissions', 'invalidateRolePermissions', 'PermissionCache'],
  'services/rateLimiter': ['rateLimiter', 'checkLimit', 'resetLimit', 'resetAllLimitsForIp', 'getIpStatus', 'createLimiter', 'authLimiter', 'strictLimiter', 'RateLimiter'],
  'services/distributedLock': ['distributedLock', 'acquire', 'release', 'extend', 'isLocked', 'withLock', 'mutex', 'acquireTaskLock', 'acquireApprovalLock', 'acquirePaymentLock', 'DistributedLock'],
  'services/pubsub': ['pubsub', 'subscribe', 'onMessage', 'publishPermissionInvalidation', 'publishSessionInvalidation', 'publishCacheInvalidation', 'invalidateUserPermissions', 'invalidateRolePermissions', 'invalidateSession', 'invalidateUserSessions', 'invalidateKeys', 'invalidatePattern', 'shutdown', 'PubSub'],
};

let project;

// Runs `source` as a file of the temporary project (.cjs or .mjs) → its parsed JSON output.
function runInProject(ext, source) {
  const file = path.join(project, `check-${process.hrtime.bigint()}.${ext}`);
  fs.writeFileSync(file, source);
  const r = spawnSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 60000, env: { ...process.env, REDIS_URL: '' } });
  assert.equal(r.status, 0, `${ext} check failed:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

describe('entry points by package name (a project with @bisman/cache in node_modules)', () => {
  before(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-exports-'));
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    fs.mkdirSync(path.join(project, 'node_modules', '@bisman'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(project, 'node_modules', '@bisman', 'cache'), 'dir');
  });
  after(() => fs.rmSync(project, { recursive: true, force: true }));

  it('require: every subpath exports the old file\'s names, bound to the same singletons', () => {
    const out = runInProject(
      'cjs',
      `const cache = require('@bisman/cache');
       const subpaths = ${JSON.stringify(SUBPATHS)};
       const out = { resolved: require.resolve('@bisman/cache'), names: {}, same: {} };
       for (const [sub, names] of Object.entries(subpaths)) {
         const m = require('@bisman/cache/' + sub);
         out.names[sub] = Object.keys(m).sort();
         const single = names[0];
         out.same[sub] = sub === 'namespaces' ? m.rateKey === cache.rateKey : m[single] === cache[single];
       }
       console.log(JSON.stringify(out));`,
    );
    assert.equal(fs.realpathSync(out.resolved), path.join(ROOT, 'index.js'));
    for (const [sub, names] of Object.entries(SUBPATHS)) {
      assert.deepEqual(out.names[sub], [...names].sort(), sub);
      assert.equal(out.same[sub], true, sub);
    }
  });

  it('require: the subpaths\' functions work on the configured back end', () => {
    const out = runInProject(
      'cjs',
      `const cache = require('@bisman/cache');
       cache.configure({ url: 'memory://exports-cjs', loaders: { session: async () => ({ user_id: 5 }) } });
       const { getSessionWithFallback, setSession } = require('@bisman/cache/services/sessionCache');
       const { checkLimit } = require('@bisman/cache/services/rateLimiter');
       const { acquire, release } = require('@bisman/cache/services/distributedLock');
       const { setUserPermissions, hasModulePermission } = require('@bisman/cache/services/permissionCache');
       const { publishCacheInvalidation } = require('@bisman/cache/services/pubsub');
       const { sessionKey, KEY_PATTERNS } = require('@bisman/cache/namespaces');
       (async () => {
         const s = await getSessionWithFallback('tok');
         const again = await getSessionWithFallback('tok');
         const stored = await setSession(cache.hashToken('x'), { user_id: 6 });
         const r = await checkLimit('1.2.3.4', '/api/auth/login');
         const lock = await acquire('task', 1);
         const released = await release('task', 1, lock.owner);
         await setUserPermissions(1, { modules: ['A'] });
         const has = await hasModulePermission(1, 'A');
         const receivers = await publishCacheInvalidation({ keys: ['k'] });
         console.log(JSON.stringify({ s: s.source, again: again.source, stored, limit: r.limit, acquired: lock.acquired, released, has, receivers, key: sessionKey('abc123'), pattern: KEY_PATTERNS.lock }));
         await cache.shutdown();
       })();`,
    );
    assert.deepEqual(out, { s: 'database', again: 'cache', stored: true, limit: 5, acquired: true, released: true, has: true, receivers: 0, key: 'session:abc123', pattern: 'lock:{resource}:{id}' });
  });

  it('import: default + named from the main entry and named from every subpath, one instance with require', () => {
    const imports = Object.entries(SUBPATHS)
      .map(([sub, names], i) => `import { ${names.map((n) => `${n} as m${i}_${n}`).join(', ')} } from '@bisman/cache/${sub}'; const m${i} = { ${names.map((n) => `${n}: m${i}_${n}`).join(', ')} };`)
      .join('\n');
    const out = runInProject(
      'mjs',
      `import cache, { rateLimiter, sessionCache, configure, metrics, hashToken, Cache } from '@bisman/cache';
       import { createRequire } from 'node:module';
       ${imports}
       const require = createRequire(import.meta.url);
       const cjs = require('@bisman/cache');
       configure({ url: 'memory://exports-esm' });
       const r = await rateLimiter.checkLimit('1.2.3.4', '/api/auth/login');
       const defined = [${Object.keys(SUBPATHS).map((_, i) => `m${i}`).join(', ')}].every((m) => Object.values(m).every((v) => v !== undefined));
       console.log(JSON.stringify({
         defaultIsCjs: cache === cjs,
         named: rateLimiter === cjs.rateLimiter && sessionCache === cjs.sessionCache && Cache === cjs.Cache,
         subpaths: m1.sessionCache === cjs.sessionCache && m3.rateLimiter === cjs.rateLimiter && m4.distributedLock === cjs.distributedLock && m5.pubsub === cjs.pubsub && m2.permissionCache === cjs.permissionCache && m0.lockKey === cjs.lockKey,
         defined,
         allowed: r.allowed,
         metrics: metrics().includes('bisman_cache_ratelimit_decisions_total'),
         hash: hashToken('t').length,
       }));
       await cache.shutdown();`,
    );
    assert.deepEqual(out, { defaultIsCjs: true, named: true, subpaths: true, defined: true, allowed: true, metrics: true, hash: 64 });
  });

  it('the internals stay private: a deep path is not exported', () => {
    const out = runInProject(
      'cjs',
      `const codes = [];
       for (const p of ['@bisman/cache/lib/cache', '@bisman/cache/binding.js', '@bisman/cache/services/sessionCache.js']) {
         try { require(p); codes.push('loaded'); } catch (e) { codes.push(e.code); }
       }
       console.log(JSON.stringify(codes));`,
    );
    assert.deepEqual(out, ['ERR_PACKAGE_PATH_NOT_EXPORTED', 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'ERR_PACKAGE_PATH_NOT_EXPORTED']);
  });
});
