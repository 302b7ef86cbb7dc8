'use strict';
// Configuration, back ends, health, key builders and failure behaviour of the foundation.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const path = require('path');
const cacheModule = require('..');
const { createCache } = cacheModule;
const { startRedis, freePort, sleep } = require('./helpers/redis');

delete process.env.REDIS_URL; // these tests choose their back end explicitly

const ROOT = path.join(__dirname, '..');

function mustNotLeak(text, secret) {
  assert.ok(!String(text).includes(secret), `"${secret}" leaked in: ${text}`);
}

describe('key builders', () => {
  it('give the exact keys of the contract', () => {
    assert.equal(cacheModule.sessionKey('abc123'), 'session:abc123');
    assert.equal(cacheModule.sessionUserKey(123), 'session:user:123');
    assert.equal(cacheModule.permUserKey(123), 'perm:user:123');
    assert.equal(cacheModule.permRoleKey(5), 'perm:role:5');
    assert.equal(cacheModule.rateKey('1.2.3.4', '/api/auth/login'), 'rate:1.2.3.4:_api_auth_login');
    assert.equal(cacheModule.lockKey('task', 99), 'lock:task:99');
  });

  it('refuse ids that could widen into a pattern, with a TypeError carrying a code', () => {
    const bad = ['', '*', 'a*', '?', '[a]', 'a]', 'a b', 'a\tb', 'a\u0000', 1.5, NaN, Infinity, null, undefined, {}, [], true];
    const builders = [
      (v) => cacheModule.sessionKey(v),
      (v) => cacheModule.sessionUserKey(v),
      (v) => cacheModule.permUserKey(v),
      (v) => cacheModule.permRoleKey(v),
      (v) => cacheModule.rateKey(v, '/x'),
      (v) => cacheModule.lockKey('task', v),
      (v) => cacheModule.lockKey(v, 1),
    ];
    for (const build of builders) {
      for (const v of bad) {
        assert.throws(() => build(v), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG', `${build} ${String(v)}`);
      }
    }
    assert.throws(() => cacheModule.rateKey('1.2.3.4', '/a*'), { code: 'ERR_INVALID_ARG' });
  });

  it('hashToken is SHA-256 hex of the raw token', () => {
    assert.equal(cacheModule.hashToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.throws(() => cacheModule.hashToken(5), { code: 'ERR_INVALID_ARG' });
    assert.throws(() => cacheModule.hashToken(''), { code: 'ERR_INVALID_ARG' });
  });
});

describe('configuration', () => {
  it('without a URL the cache is disabled and everything falls back to the loaders', async () => {
    const c = createCache({ loaders: { session: async (t) => ({ user_id: 1, t }) } });
    assert.equal(c.isEnabled(), false);
    const p = await c.ping();
    assert.equal(p.pong, null);
    assert.equal(p.enabled, false);
    assert.match(p.error, /disabled/);
    assert.deepEqual(await c.getSessionWithFallback('tok'), { user_id: 1, t: 'tok', source: 'database' });
    assert.equal(await c.sessionCache.setSession('h', { user_id: 1 }), false);
    assert.equal(await c.sessionCache.getSession('h'), null);
    await c.shutdown();
  });

  it('REDIS_URL is used when configure() is not given a url', async () => {
    process.env.REDIS_URL = 'memory://from-env';
    try {
      const c = createCache({});
      assert.equal(c.isEnabled(), true);
      assert.equal((await c.ping()).pong, 'PONG');
      await c.shutdown();
    } finally {
      delete process.env.REDIS_URL;
    }
  });

  it('bad options are refused with typed errors, and a URL never appears in them', () => {
    assert.throws(() => createCache({ url: 'http://user:hunter2@host' }), (e) => {
      assert.ok(e instanceof TypeError);
      assert.equal(e.code, 'ERR_INVALID_ARG');
      mustNotLeak(e.message, 'hunter2');
      return true;
    });
    assert.throws(() => createCache({ url: 'memory://', commandTimeoutMs: 0 }), (e) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE');
    assert.throws(() => createCache({ url: 'memory://', maxValueBytes: -1 }), (e) => e instanceof RangeError);
    assert.throws(() => createCache({ url: 'memory://', keyPrefix: 'a*' }), (e) => e instanceof TypeError);
    assert.throws(() => createCache({ url: 5 }), (e) => e instanceof TypeError);
    assert.throws(() => createCache({ loaders: { session: 'nope' } }), (e) => e instanceof TypeError);
    // a number option of another type: a TypeError with our code (was napi's NumberExpected)
    for (const name of ['commandTimeoutMs', 'connectTimeoutMs', 'maxValueBytes', 'circuitThreshold', 'circuitCooldownMs', 'maxOutboxBytes', 'maxReplyBytes', 'maxMessageBytes', 'nearCacheTtlMs', 'nearCacheMax']) {
      assert.throws(() => createCache({ url: 'memory://', [name]: '1mb' }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG' && e.message.startsWith(name), name);
      assert.throws(() => cacheModule.configure({ url: 'memory://', [name]: true }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG', name);
    }
  });

  it('a numeric option given as null takes its default, like undefined', async () => {
    const names = ['commandTimeoutMs', 'connectTimeoutMs', 'maxValueBytes', 'circuitThreshold', 'circuitCooldownMs', 'maxOutboxBytes', 'maxReplyBytes', 'maxMessageBytes', 'nearCacheTtlMs', 'nearCacheMax'];
    const c = createCache({ url: 'memory://nulls', ...Object.fromEntries(names.map((n) => [n, null])) });
    assert.equal((await c.ping()).pong, 'PONG');
    assert.equal(await c.sessionCache.setSession('h', { user_id: 1 }), true);
    await c.shutdown();
  });

  it('configure() swaps the back end under the same singleton objects', async () => {
    const { sessionCache } = cacheModule;
    cacheModule.configure({ url: 'memory://swap-a' });
    await sessionCache.setSession('h1', { user_id: 1 });
    assert.notEqual(await sessionCache.getSession('h1'), null);
    cacheModule.configure({ url: 'memory://swap-b' });
    assert.equal(await sessionCache.getSession('h1'), null, 'the new back end is in use');
    assert.equal(cacheModule.isEnabled(), true);
    await cacheModule.shutdown();
  });

  it('maxValueBytes bounds stored values', async () => {
    const c = createCache({ url: 'memory://maxbytes', maxValueBytes: 100 });
    await assert.rejects(c.sessionCache.setSession('h', { pad: 'x'.repeat(200) }), (e) => e instanceof RangeError && e.code === 'ERR_VALUE_TOO_LARGE');
    assert.equal(await c.sessionCache.setSession('h', { pad: 'x' }), true);
    await c.shutdown();
  });
});

describe('health and failure on a real Redis', () => {
  let server;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  it('ping answers PONG with the time it took; isEnabled is true', async () => {
    const c = createCache({ url: server.url });
    const p = await c.ping();
    assert.equal(p.pong, 'PONG');
    assert.equal(p.enabled, true);
    assert.equal(typeof p.ms, 'number');
    assert.ok(p.ms >= 0 && p.ms < 1000);
    assert.equal(c.isEnabled(), true);
    await c.shutdown();
  });

  it('keyPrefix is applied to every key', async () => {
    const c = createCache({ url: server.url, keyPrefix: 'erp:test:' });
    await c.sessionCache.setSession('pfx', { user_id: 'pfx-user' });
    const client = server.client();
    assert.equal(await client.exists('erp:test:session:pfx'), 1);
    assert.equal(await client.exists('erp:test:session:user:pfx-user'), 1);
    assert.equal(await client.exists('session:pfx'), 0);
    assert.equal(await c.sessionCache.invalidateSession('pfx'), true);
    assert.equal(await client.exists('erp:test:session:user:pfx-user'), 0);
    await c.shutdown();
  });

  it('stats() counts hits, misses, loader calls, fallbacks and errors per service', async () => {
    const c = createCache({ url: server.url, loaders: { session: async () => ({ user_id: 3 }) } });
    await c.sessionCache.setSession('st1', { user_id: 3 });
    await c.sessionCache.getSession('st1');
    await c.sessionCache.getSession('st-missing');
    await c.getSessionWithFallback('st-token');
    const s = c.stats();
    assert.equal(s.session.hits, 1);
    assert.equal(s.session.misses, 2);
    assert.equal(s.session.loaderCalls, 1);
    assert.equal(s.session.fallbacks, 1);
    assert.equal(s.session.errors, 0);
    assert.equal(s.inFlight, 0);
    await c.shutdown();
  });

  it('a wrong Redis password appears in no error, and reads fall back', async () => {
    const secured = await startRedis({ password: 'right-pass-123' });
    try {
      const wrong = `redis://:wrong-pass-456@127.0.0.1:${secured.port}`;
      const c = createCache({ url: wrong, loaders: { session: async () => ({ user_id: 1 }) } });
      const p = await c.ping();
      assert.equal(p.pong, null);
      mustNotLeak(p.error, 'wrong-pass-456');
      mustNotLeak(JSON.stringify(c.stats()), 'wrong-pass-456');
      assert.equal((await c.getSessionWithFallback('t')).source, 'database');
      assert.equal(c.isEnabled(), false);
      await c.shutdown();
      const ok = createCache({ url: secured.url });
      assert.equal((await ok.ping()).pong, 'PONG');
      await ok.shutdown();
    } finally {
      await secured.stop();
    }
  });

  it('a refused port: reads fall back, isEnabled turns false, and the password is not shown', async () => {
    const port = await freePort();
    const c = createCache({ url: `redis://:pw-on-closed-port@127.0.0.1:${port}`, loaders: { session: async () => ({ user_id: 4 }) } });
    const r = await c.getSessionWithFallback('x');
    assert.deepEqual(r, { user_id: 4, source: 'database' });
    const p = await c.ping();
    mustNotLeak(p.error, 'pw-on-closed-port');
    assert.equal(c.isEnabled(), false);
    assert.ok(c.stats().session.errors >= 1);
    assert.equal(await c.sessionCache.setSession('h', { user_id: 1 }), false);
    assert.equal(await c.sessionCache.invalidateSession('h'), false);
    await c.shutdown();
  });

  it('rediss:// to a plaintext server fails with an error (no hang, no plaintext fallback)', async () => {
    const c = createCache({ url: `rediss://127.0.0.1:${server.port}`, commandTimeoutMs: 500, connectTimeoutMs: 500 });
    const t0 = Date.now();
    const p = await c.ping();
    assert.equal(p.pong, null);
    assert.equal(p.enabled, false);
    assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
    assert.equal(await c.sessionCache.setSession('tls-h', { user_id: 1 }), false);
    const plain = createCache({ url: server.url });
    assert.equal(await plain.sessionCache.getSession('tls-h'), null, 'nothing reached the server');
    await plain.shutdown();
    await c.shutdown();
  });

  it('a hung Redis (SIGSTOP): calls return by commandTimeoutMs and the loader answers', async () => {
    const hung = await startRedis();
    const c = createCache({ url: hung.url, commandTimeoutMs: 200, loaders: { session: async () => ({ user_id: 5 }) } });
    try {
      assert.equal((await c.ping()).pong, 'PONG');
      hung.pause();
      const t0 = Date.now();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.getSessionWithFallback(`hung-${i}`)));
      const took = Date.now() - t0;
      for (const r of results) assert.equal(r.source, 'database');
      assert.ok(took < 200 + 500, `took ${took} ms`);
      assert.equal(c.isEnabled(), false);
      hung.resume();
      let pong = null;
      for (let i = 0; i < 50 && pong !== 'PONG'; i++) {
        pong = (await c.ping()).pong;
        if (pong !== 'PONG') await sleep(100);
      }
      assert.equal(pong, 'PONG');
      assert.equal(c.isEnabled(), true);
    } finally {
      hung.resume();
      await c.shutdown();
      await hung.stop();
    }
  });

  it('Redis restarted on the same port: the cache reconnects by itself', async () => {
    const s = await startRedis();
    const c = createCache({ url: s.url, commandTimeoutMs: 300 });
    try {
      assert.equal(await c.sessionCache.setSession('r1', { user_id: 1 }), true);
      await s.kill();
      assert.equal(await c.sessionCache.getSession('r1'), null, 'down: a miss, not a throw');
      await s.start();
      let value = null;
      const t0 = Date.now();
      while (Date.now() - t0 < 5000) {
        if ((await c.sessionCache.setSession('r2', { user_id: 2 })) === true) {
          value = await c.sessionCache.getSession('r2');
          break;
        }
        await sleep(50);
      }
      assert.deepEqual(value, { user_id: 2 });
      assert.equal(c.isEnabled(), true);
    } finally {
      await c.shutdown();
      await s.stop();
    }
  });
});

describe('shutdown', () => {
  let server;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  for (const kind of ['redis', 'memory']) {
    it(`a process that used the cache (${kind}) and called shutdown() exits by itself within 2 s`, async () => {
      const url = kind === 'redis' ? server.url : 'memory://exit';
      const script = `
        const c = require(${JSON.stringify(ROOT)});
        c.configure({ url: ${JSON.stringify(url)} });
        (async () => {
          await c.sessionCache.setSession('exit', { user_id: 1 });
          await c.getSessionWithFallback('tok');
          await c.ping();
          await c.shutdown();
          console.log('done');
        })();`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve('timeout');
        }, 2000 + 1500); // node start-up time on a loaded machine, plus the 2 s allowance
        child.on('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      assert.equal(code, 0, out);
      assert.match(out, /done/);
    });
  }

  it('shutdown() with calls in flight on a hung Redis: every call settles at once, as closed', async () => {
    const hung = await startRedis();
    const c = createCache({ url: hung.url, commandTimeoutMs: 5000 });
    try {
      assert.equal((await c.ping()).pong, 'PONG');
      hung.pause();
      const t0 = performance.now();
      const calls = Array.from({ length: 20 }, (_, i) => c.distributedLock.acquire('task', `closing-${i}`));
      const reads = Array.from({ length: 20 }, (_, i) => c.sessionCache.getSession(`closing-${i}`));
      await sleep(50); // written to the socket, unanswered
      await c.shutdown();
      const locks = await Promise.all(calls);
      assert.deepEqual(await Promise.all(reads), Array(20).fill(null));
      const ms = performance.now() - t0;
      assert.ok(ms < 2000, `settled after ${ms.toFixed(0)} ms (commandTimeoutMs 5000)`);
      for (const l of locks) {
        assert.equal(l.acquired, false);
        assert.equal(l.code, 'ECLOSED', `${l.code}: ${l.error && l.error.message}`);
      }
    } finally {
      hung.resume();
      await hung.stop();
    }
  });

  it('a process with operations in flight stays alive until they finish', async () => {
    const script = `
      const c = require(${JSON.stringify(ROOT)});
      c.configure({ url: ${JSON.stringify(server.url)} });
      c.sessionCache.setSession('alive', { user_id: 1 }).then((r) => console.log('stored', r));`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    assert.match(out, /stored true/);
  });
});
