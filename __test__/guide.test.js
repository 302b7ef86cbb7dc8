'use strict';
// The ERP's guide (shared/seed/redis-safe-patterns.md): its snippets run as written, through
// a `./cache` folder whose index.js is the one line the migration asks for.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startRedis } = require('./helpers/redis');
const { runApp } = require('./helpers/guide');

const SECTION_1 = `
const { sessionCache } = require('./cache');
const tokenHash = require('./cache').hashToken('guide-token');
const token = 'guide-token';
const userId = 123;
(async () => {
// Store session
await sessionCache.setSession(tokenHash, {
  user_id: 123,
  tenant_id: 'tenant-uuid',
  role: 'HUB_INCHARGE',
  expires_at: new Date(Date.now() + 3600000).toISOString()
});

// Get session (with DB fallback)
const session = await sessionCache.getSessionWithFallback(token);
// { user_id: 123, ..., source: 'cache' | 'database' }
console.log(JSON.stringify(session));

// Invalidate on logout
await sessionCache.invalidateSession(tokenHash);

// Invalidate all user sessions (password change, role revoke)
await sessionCache.invalidateUserSessions(userId);
console.log('after', JSON.stringify(await sessionCache.getSession(tokenHash)));
await require('./cache').shutdown();
})();
`;

const SECTION_6 = `
const { sessionKey, permUserKey, permRoleKey, rateKey, lockKey } = require('./cache');

console.log(sessionKey('abc123'))                    // 'session:abc123'
console.log(permUserKey(123))                        // 'perm:user:123'
console.log(permRoleKey(5))                          // 'perm:role:5'
console.log(rateKey('1.2.3.4', '/api/auth/login'))   // 'rate:1.2.3.4:_api_auth_login'
console.log(lockKey('task', 99))                     // 'lock:task:99'
`;

const SECTION_9_PING = `
(async () => {
// Check Redis health
const { ping } = require('./cache');
const health = await ping();
// { pong: 'PONG', ms: 2, enabled: true }
console.log(JSON.stringify(health));
await require('./cache').shutdown();
})();
`;

describe("the ERP guide's snippets run as written", () => {
  let server;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  for (const [name, url] of [['redis', null], ['memory', 'memory://']]) {
    it(`section 1 (sessions) on ${name}`, async () => {
      const r = await runApp(SECTION_1, { REDIS_URL: url || server.url });
      assert.equal(r.code, 0, r.stderr);
      const [first, after] = r.stdout.trim().split('\n');
      const session = JSON.parse(first);
      assert.equal(session.user_id, 123);
      assert.equal(session.role, 'HUB_INCHARGE');
      assert.equal(session.source, 'cache');
      assert.equal(after, 'after null');
    });

    it(`section 9 ping() on ${name}`, async () => {
      const r = await runApp(SECTION_9_PING, { REDIS_URL: url || server.url });
      assert.equal(r.code, 0, r.stderr);
      const health = JSON.parse(r.stdout);
      assert.equal(health.pong, 'PONG');
      assert.equal(health.enabled, true);
      assert.equal(typeof health.ms, 'number');
    });
  }

  it('section 6 (key builders)', async () => {
    const r = await runApp(SECTION_6, { REDIS_URL: '' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'session:abc123',
      'perm:user:123',
      'perm:role:5',
      'rate:1.2.3.4:_api_auth_login',
      'lock:task:99',
    ]);
  });
});
