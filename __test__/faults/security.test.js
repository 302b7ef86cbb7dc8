'use strict';
// Security: the least-privilege ACL user (default user off) passes the behavioural suites
// while KEYS/FLUSHALL are refused to it; rediss:// with a CA made here works, a wrong CA
// fails with no plaintext fallback; a URL's password appears in 0 errors, log lines or
// Debug output.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');
const { createCache } = require('../..');
const { startRedis, freePort, sleep, makePki } = require('../helpers/redis');
const { startAclRedis, aclSetUserLine, APP, SUITE, PREFIX } = require('../helpers/acl');
const { guardProcess } = require('../helpers/faults');

const guard = guardProcess();
const ROOT = path.join(__dirname, '..', '..');

describe('least-privilege ACL user', () => {
  let server;
  before(async () => {
    server = await startAclRedis({ as: APP });
  });
  after(async () => {
    await server.stop();
  });

  it('the default user is off; KEYS, FLUSHALL, CONFIG, foreign keys and channels are refused to the README user', async () => {
    const anon = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    anon.on('error', () => {});
    await anon.connect().catch(() => {});
    await assert.rejects(anon.get('session:x'), /NOAUTH|NOPERM|WRONGPASS|closed|Connection/);
    anon.disconnect();
    const app = new Redis({ port: server.port, host: '127.0.0.1', username: APP.user, password: APP.pass, maxRetriesPerRequest: 0 });
    app.on('error', () => {});
    try {
      for (const [name, call, re] of [
        ['KEYS', () => app.keys('*')],
        ['FLUSHALL', () => app.flushall()],
        ['FLUSHDB', () => app.flushdb()],
        ['CONFIG', () => app.config('GET', 'maxmemory')],
        ['DEBUG', () => app.call('DEBUG', 'SLEEP', '0'), /NOPERM|not allowed/],
        ['SET of a key without the prefix', () => app.set('session:abc', '1')],
        ['PUBLISH on a foreign channel', () => app.publish('other-channel', 'x')],
      ]) {
        await assert.rejects(call(), re || /NOPERM/, `${name} must be refused`);
      }
      assert.equal(await app.set(`${PREFIX}session:acl-probe`, '1', 'PX', 1000), 'OK');
    } finally {
      app.disconnect();
    }
  });

  it('every service works as the README user with keyPrefix erp: (session, permissions, rate limit, lock, pub/sub)', async () => {
    const cache = createCache({ url: server.url, keyPrefix: PREFIX, loaders: { session: async () => ({ user_id: 5 }) } });
    const sub = createCache({ url: server.url, keyPrefix: PREFIX, nodeId: 'sub' });
    try {
      assert.equal((await cache.ping()).pong, 'PONG');
      assert.equal(await cache.sessionCache.setSession('h1', { user_id: 5 }), true);
      assert.equal((await cache.sessionCache.getSession('h1')).user_id, 5);
      assert.deepEqual(await cache.sessionCache.getUserSessions(5), ['h1']);
      assert.equal(await cache.sessionCache.invalidateUserSessions(5), 1);
      assert.equal(await cache.permissionCache.setUserPermissions('u1', { modules: ['a'], pages: {} }), true);
      assert.equal(await cache.permissionCache.hasModulePermission('u1', 'a'), true);
      const r = await cache.rateLimiter.checkLimit('10.9.9.9', '/api/auth/login');
      assert.equal(r.total, 1);
      assert.equal(await cache.rateLimiter.resetAllLimitsForIp('10.9.9.9'), 1);
      const lock = await cache.distributedLock.acquire('task', 'acl');
      assert.equal(lock.acquired, true);
      assert.equal((await cache.distributedLock.isLocked('task', 'acl')).locked, true);
      assert.equal(await cache.distributedLock.release('task', 'acl', lock.owner), true);
      const got = [];
      sub.pubsub.onMessage('cache:invalidate', (m) => got.push(m));
      assert.equal(await sub.pubsub.subscribe(), true);
      assert.equal(await cache.pubsub.publishCacheInvalidation({ x: 1 }), 1);
      for (let i = 0; i < 100 && got.length === 0; i++) await sleep(10);
      assert.equal(got.length, 1);
      assert.ok((await cache.pubsub.invalidatePattern('perm:user:u1*')) >= 0);
      const st = cache.stats();
      for (const s of ['session', 'permission', 'rateLimit', 'lock', 'pubsub']) assert.equal(st[s].errors, 0, `${s} errors`);
    } finally {
      await cache.shutdown();
      await sub.pubsub.shutdown();
      await sub.shutdown();
    }
  });

  it('the behavioural suites (session, permissions, rate limit, lock, pub/sub) pass with only the README\'s commands', () => {
    const suites = ['session', 'permissions', 'rate_limit', 'lock', 'pubsub'].map((s) => path.join('__test__', `${s}.test.js`));
    // A fresh test runner (not a child of this one: without NODE_TEST_CONTEXT), reporting TAP.
    const env = { ...process.env, BISMAN_REDIS_ACL: '1' };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...suites], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 600_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const summary = (r.stdout || '').split('\n').filter((l) => /^# (tests|pass|fail)/.test(l));
    console.log(`# ACL user ${SUITE.user} (the README's commands, every key): behavioural suites → ${summary.join(', ')}`);
    if (r.status !== 0) {
      const fails = (r.stdout || '').split('\n').filter((l) => /^\s*not ok/.test(l)).slice(0, 20);
      assert.fail(`suites failed as the ACL user (status ${r.status}):\n${fails.join('\n')}\n${(r.stderr || '').slice(0, 2000)}`);
    }
    assert.ok(summary.some((l) => /^# pass [1-9]/.test(l)));
  });

  it('the README documents the exact ACL SETUSER line the tests use', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    assert.ok(readme.includes(aclSetUserLine('bisman', '<password>', PREFIX)), aclSetUserLine('bisman', '<password>', PREFIX));
  });
});

describe('rediss:// with a CA made in the test', () => {
  let dir;
  let pki;
  let server;
  let tlsPort;
  const PASSWORD = 'tls-pa55word-zz';
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-tls-'));
    pki = makePki(dir);
    tlsPort = await freePort();
    server = await startRedis({
      password: PASSWORD,
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', pki.cert, '--tls-key-file', pki.key, '--tls-ca-cert-file', pki.ca, '--tls-auth-clients', 'no'],
    });
  });
  after(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('works with tls.ca as a path and as PEM', async () => {
    for (const ca of [pki.ca, fs.readFileSync(pki.ca, 'utf8'), fs.readFileSync(pki.ca)]) {
      const cache = createCache({ url: `rediss://:${PASSWORD}@127.0.0.1:${tlsPort}`, tls: { ca } });
      try {
        assert.equal((await cache.ping()).pong, 'PONG');
        assert.equal(await cache.sessionCache.setSession('tls-h', { user_id: 1 }), true);
        assert.equal((await cache.sessionCache.getSession('tls-h')).user_id, 1);
      } finally {
        await cache.shutdown();
      }
    }
  });

  it('a wrong CA (or none: web PKI roots) fails, with no plaintext fallback and no password in the error', async () => {
    const before = (await server.client().info('stats')).match(/total_connections_received:(\d+)/)[1];
    for (const tls of [{ ca: pki.other }, undefined]) {
      const cache = createCache({ url: `rediss://:${PASSWORD}@127.0.0.1:${tlsPort}`, commandTimeoutMs: 500, connectTimeoutMs: 1000, tls });
      try {
        const p = await cache.ping();
        assert.equal(p.pong, null);
        assert.equal(p.enabled, false);
        assert.ok(!p.error.includes(PASSWORD), p.error);
        assert.equal(await cache.sessionCache.setSession('tls-x', { user_id: 1 }), false);
        assert.equal(cache.isEnabled(), false);
      } finally {
        await cache.shutdown();
      }
    }
    // The data never reached the server in clear: the key does not exist.
    assert.equal(await server.client().exists('session:tls-x'), 0);
    assert.ok(before !== undefined);
  });

  it('a rediss:// URL against the plaintext port fails (TLS is never downgraded)', async () => {
    const cache = createCache({ url: `rediss://:${PASSWORD}@127.0.0.1:${server.port}`, tls: { ca: pki.ca }, commandTimeoutMs: 500, connectTimeoutMs: 1000 });
    try {
      const p = await cache.ping();
      assert.equal(p.pong, null);
      assert.ok(!p.error.includes(PASSWORD));
    } finally {
      await cache.shutdown();
    }
  });

  it('tls.ca is refused with a code when unreadable, not PEM, or given for redis://', () => {
    for (const [opts, re] of [
      [{ url: `rediss://127.0.0.1:${tlsPort}`, tls: { ca: path.join(dir, 'missing.crt') } }, /cannot read/],
      [{ url: `rediss://127.0.0.1:${tlsPort}`, tls: { ca: Buffer.from('not a pem') } }, /PEM/],
      [{ url: `redis://127.0.0.1:${server.port}`, tls: { ca: pki.ca } }, /rediss/],
      [{ url: `rediss://127.0.0.1:${tlsPort}`, tls: 'x' }, /tls must be/],
    ]) {
      assert.throws(() => createCache(opts), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG' && re.test(e.message));
    }
  });
});

describe('the password appears in 0 errors or log lines', () => {
  const SECRET = 'Sup3r-S3cret-Pw';
  let server;
  before(async () => {
    server = await startRedis({ password: 'the-right-one' });
  });
  after(async () => {
    await server.stop();
  });

  it('wrong password and refused port: no error, stats, log line or stderr output holds it', async () => {
    const seen = [];
    const orig = { error: console.error, warn: console.warn, log: console.log, write: process.stderr.write };
    console.error = (...a) => seen.push(a.map(String).join(' '));
    console.warn = console.error;
    process.stderr.write = (chunk, ...rest) => {
      seen.push(String(chunk));
      return orig.write.call(process.stderr, chunk, ...rest);
    };
    const refused = await freePort();
    const urls = [
      `redis://:${SECRET}@127.0.0.1:${server.port}`,
      `redis://someone:${SECRET}@127.0.0.1:${server.port}`,
      `redis://:${encodeURIComponent(SECRET + '@/')}@127.0.0.1:${server.port}`,
      `redis://:${SECRET}@127.0.0.1:${refused}`,
      `rediss://:${SECRET}@127.0.0.1:${refused}`,
    ];
    const texts = [];
    try {
      for (const url of urls) {
        const cache = createCache({ url, commandTimeoutMs: 300, connectTimeoutMs: 500 });
        try {
          const p = await cache.ping();
          assert.equal(p.pong, null);
          texts.push(p.error);
          const lock = await cache.distributedLock.acquire('task', 'pw');
          texts.push(lock.error, lock.code);
          texts.push(JSON.stringify(cache.stats()));
          assert.equal(await cache.pubsub.subscribe(), false);
          texts.push(JSON.stringify(cache.pubsub.status()));
          try {
            await cache.distributedLock.renew('task', 'pw', 'owner', 1000);
          } catch (err) {
            texts.push(err.message, String(err.stack), require('util').inspect(err));
          }
        } finally {
          await cache.pubsub.shutdown();
          await cache.shutdown();
        }
      }
      // a malformed URL
      try {
        createCache({ url: `redis://:${SECRET}@[::bad` });
      } catch (err) {
        texts.push(err.message, String(err.stack));
      }
    } finally {
      Object.assign(console, { error: orig.error, warn: orig.warn, log: orig.log });
      process.stderr.write = orig.write;
    }
    const all = [...texts, ...seen].join('\n');
    const leaks = [SECRET, encodeURIComponent(SECRET + '@/'), `${SECRET}@/`].filter((s) => all.includes(s));
    console.log(`# secrets: ${texts.length} error texts and ${seen.length} log lines checked, ${leaks.length} contain the password`);
    assert.ok(texts.length >= urls.length * 3);
    assert.deepEqual(leaks, []);
  });
});

describe('security: process guards', () => {
  it('0 unhandled rejections and 0 uncaught exceptions', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
