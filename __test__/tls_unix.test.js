'use strict';
// TLS (rediss://) and Unix sockets run on the pipelined transport, as plain TCP does: every
// service works over each (real redis-server with a test PKI / a unixsocket), mTLS with a
// client certificate, tls.servername, rejectUnauthorized:false against a self-signed server;
// a wrong CA or name fails with no plaintext fallback and no password in any error; a missing
// socket fails softly with the usual fallbacks.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createCache } = require('..');
const { startRedis, sleep, makePki } = require('./helpers/redis');

const PASSWORD = 'tls-unix-pa55word';

// Session, permissions, rate limit, lock and pub/sub through `url` (+ `extra` options); the
// commands must go through the pipeline (its write counter moves). `server` inspects.
async function everyService(url, extra, server, db = 0) {
  const cache = createCache({ url, ...extra, loaders: { session: async () => ({ user_id: 5 }) } });
  const sub = createCache({ url, ...extra, nodeId: 'sub' });
  try {
    const [w0, c0] = cache.ctx.bridge.native.transportCounts();
    assert.equal((await cache.ping()).pong, 'PONG');
    assert.equal(await cache.sessionCache.setSession('h1', { user_id: 5 }), true);
    assert.equal((await cache.sessionCache.getSession('h1')).user_id, 5);
    assert.deepEqual(await cache.sessionCache.getUserSessions(5), ['h1']);
    assert.equal(await cache.sessionCache.invalidateUserSessions(5), 1);
    const loaded = await cache.sessionCache.getSessionWithFallback('raw-token');
    assert.deepEqual([loaded.user_id, loaded.source], [5, 'database'], 'a miss is loaded');
    // the fill is written after the answer: it shows within a bounded wait
    let source = 'database';
    for (let i = 0; i < 100 && source !== 'cache'; i++) {
      await sleep(10);
      source = (await cache.sessionCache.getSessionWithFallback('raw-token')).source;
    }
    assert.equal(source, 'cache', 'and filled');
    assert.equal(await cache.permissionCache.setUserPermissions('u1', { modules: ['a'], pages: {} }), true);
    assert.equal(await cache.permissionCache.hasModulePermission('u1', 'a'), true);
    const hits = await Promise.all(Array.from({ length: 256 }, () => cache.rateLimiter.checkLimit('10.9.9.9', '/api/x')));
    assert.deepEqual(hits.map((h) => h.total).sort((a, b) => a - b), Array.from({ length: 256 }, (_, i) => i + 1));
    assert.equal(await cache.rateLimiter.resetAllLimitsForIp('10.9.9.9'), 1);
    const lock = await cache.distributedLock.acquire('task', 'x');
    assert.equal(lock.acquired, true);
    assert.equal((await cache.distributedLock.isLocked('task', 'x')).locked, true);
    assert.equal(await cache.distributedLock.release('task', 'x', lock.owner), true);
    const got = [];
    sub.pubsub.onMessage('cache:invalidate', (m) => got.push(m));
    assert.equal(await sub.pubsub.subscribe(), true);
    assert.ok((await cache.pubsub.publishCacheInvalidation({ x: 1 })) >= 1, 'publish reached the subscriber');
    for (let i = 0; i < 200 && got.length === 0; i++) await sleep(10);
    assert.equal(got.length, 1, 'the subscriber (its own connection, same transport) got the message');
    const st = cache.stats();
    for (const s of ['session', 'permission', 'rateLimit', 'lock', 'pubsub']) assert.equal(st[s].errors, 0, `${s} errors`);
    const [w1, c1] = cache.ctx.bridge.native.transportCounts();
    // the 256 hits leave as one call of the hit script per 64 (rate_batch.test.js)
    assert.ok(c1 - c0 >= Math.ceil(256 / 64) + 10, `commands went through the pipeline (${c1 - c0} commands)`);
    assert.ok(w1 - w0 < c1 - c0, `pipelined: ${w1 - w0} writes for ${c1 - c0} commands`);
    const admin = server.client();
    await admin.select(db);
    assert.equal(await admin.exists('perm:user:u1'), 1, `the data is in db ${db}`);
    return { writes: w1 - w0, commands: c1 - c0 };
  } finally {
    await cache.shutdown();
    await sub.pubsub.shutdown();
    await sub.shutdown();
  }
}

// A cache whose link must fail: ping reports it (no password in the text), calls fall back.
async function failsSoftly(url, extra, what) {
  const cache = createCache({ url, commandTimeoutMs: 500, connectTimeoutMs: 1000, ...extra });
  cache.on('error', () => {});
  try {
    const t0 = performance.now();
    const p = await cache.ping();
    assert.equal(p.pong, null, what);
    assert.equal(p.enabled, false, what);
    assert.ok(!p.error.includes(PASSWORD), `${what}: ${p.error}`);
    assert.equal(await cache.sessionCache.setSession('never', { user_id: 1 }), false, what);
    assert.equal(await cache.sessionCache.getSession('never'), null, what);
    assert.equal((await cache.rateLimiter.checkLimit('10.0.0.1', '/api/x')).allowed, true, `${what}: fails open`);
    const ms = performance.now() - t0;
    assert.ok(ms < 5000, `${what}: settled in ${ms} ms`);
    return p.error;
  } finally {
    await cache.shutdown();
  }
}

describe('rediss:// on the pipelined transport', () => {
  let dir;
  let pki;
  let server; // TLS, server certificate from the test CA, client certificates not required
  let mtls; // tls-auth-clients yes
  let selfSigned;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-tlsu-'));
    pki = makePki(dir);
    server = await startRedis({ password: PASSWORD, tls: { pki } });
    mtls = await startRedis({ password: PASSWORD, tls: { pki, authClients: true } });
    selfSigned = await startRedis({ password: PASSWORD, tls: { pki: { ...pki, cert: pki.selfCert, key: pki.selfKey } } });
  });
  after(async () => {
    for (const s of [server, mtls, selfSigned]) if (s) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every service works over TLS with tls.ca (and db 3 from the URL), through the pipeline', async () => {
    const r = await everyService(`rediss://:${PASSWORD}@127.0.0.1:${server.tlsPort}/3`, { tls: { ca: pki.ca } }, server, 3);
    console.log(`# TLS: ${r.commands} commands in ${r.writes} writes`);
  });

  it('mTLS: with tls.cert/tls.key every service works; without them the server refuses the handshake', async () => {
    await everyService(`rediss://:${PASSWORD}@127.0.0.1:${mtls.tlsPort}`, { tls: { ca: pki.ca, cert: pki.clientCert, key: fs.readFileSync(pki.clientKey) } }, mtls);
    const err = await failsSoftly(`rediss://:${PASSWORD}@127.0.0.1:${mtls.tlsPort}`, { tls: { ca: pki.ca } }, 'no client certificate');
    console.log(`# mTLS without a client certificate: ${err}`);
  });

  it('tls.servername: the name checked (localhost is in the certificate; another name fails)', async () => {
    const url = `rediss://:${PASSWORD}@127.0.0.1:${server.tlsPort}`;
    const ok = createCache({ url, tls: { ca: pki.ca, servername: 'localhost' } });
    try {
      assert.equal((await ok.ping()).pong, 'PONG');
      assert.equal(await ok.sessionCache.setSession('sni', { user_id: 1 }), true);
    } finally {
      await ok.shutdown();
    }
    const err = await failsSoftly(url, { tls: { ca: pki.ca, servername: 'redis.example.com' } }, 'wrong servername');
    assert.match(err, /certificate|name/i);
  });

  it('a wrong CA, the web PKI roots, or rediss:// to the plaintext port fail: no plaintext fallback, no password in errors', async () => {
    const url = `rediss://:${PASSWORD}@127.0.0.1:${server.tlsPort}`;
    const errors = [
      await failsSoftly(url, { tls: { ca: pki.other } }, 'wrong CA'),
      await failsSoftly(url, {}, 'web PKI roots'),
      await failsSoftly(`rediss://:${PASSWORD}@127.0.0.1:${server.port}`, { tls: { ca: pki.ca } }, 'plaintext port'),
      await failsSoftly(`rediss://:${PASSWORD}@127.0.0.1:${selfSigned.tlsPort}`, { tls: { ca: pki.ca } }, 'self-signed server'),
    ];
    console.log(`# TLS failures: ${errors.join(' | ')}`);
    assert.equal(await server.client().exists('session:never'), 0, 'nothing reached the server');
  });

  it('rejectUnauthorized:false connects to a self-signed server (and to a wrong name)', async () => {
    const cache = createCache({ url: `rediss://:${PASSWORD}@127.0.0.1:${selfSigned.tlsPort}`, tls: { rejectUnauthorized: false, servername: 'not-the-name.example' } });
    try {
      assert.equal((await cache.ping()).pong, 'PONG');
      assert.equal(await cache.sessionCache.setSession('self', { user_id: 9 }), true);
      assert.equal((await cache.sessionCache.getSession('self')).user_id, 9);
    } finally {
      await cache.shutdown();
    }
  });

  it('bad tls options are refused with a TypeError and code ERR_INVALID_ARG, nothing connects', () => {
    const url = `rediss://127.0.0.1:${server.tlsPort}`;
    for (const [opts, re] of [
      [{ url, tls: { cert: pki.clientCert } }, /go together/],
      [{ url, tls: { key: pki.clientKey } }, /go together/],
      [{ url, tls: { cert: pki.clientCert, key: Buffer.from('not a key') } }, /tls.key/],
      [{ url, tls: { cert: Buffer.from('not a cert'), key: pki.clientKey } }, /tls.cert/],
      [{ url, tls: { cert: pki.clientCert, key: pki.selfKey } }, /does not match/],
      [{ url, tls: { cert: path.join(dir, 'missing.crt'), key: pki.clientKey } }, /cannot read/],
      [{ url, tls: { servername: '' } }, /servername/],
      [{ url, tls: { servername: 42 } }, /servername/],
      [{ url, tls: { servername: 'bad name!' } }, /servername/],
      [{ url, tls: { rejectUnauthorized: 'no' } }, /rejectUnauthorized/],
      [{ url: `redis://127.0.0.1:${server.port}`, tls: { rejectUnauthorized: false } }, /rediss/],
      [{ url: `unix://${dir}/x.sock`, tls: { servername: 'localhost' } }, /rediss/],
      [{ url: `rediss://127.0.0.1:${server.tlsPort}#insecure` }, /rejectUnauthorized/],
    ]) {
      assert.throws(() => createCache(opts), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG' && re.test(e.message), `${JSON.stringify(opts.tls)} ${re}`);
    }
  });
});

describe('Unix sockets on the pipelined transport', () => {
  let server;
  before(async () => {
    server = await startRedis({ password: PASSWORD, unixsocket: true });
  });
  after(async () => {
    await server.stop();
  });

  it('every service works over unix:// (password and db from the query) and redis+unix://', async () => {
    const a = await everyService(`unix://${server.socket}?pass=${PASSWORD}&db=2`, {}, server, 2);
    await server.client().flushall();
    const b = await everyService(`redis+unix://${server.socket}?pass=${encodeURIComponent(PASSWORD)}`, {}, server, 0);
    console.log(`# Unix socket: ${a.commands} commands in ${a.writes} writes; ${b.commands} in ${b.writes}`);
  });

  it('a missing socket or a wrong password fails softly (fallbacks, no password in errors)', async () => {
    const missing = await failsSoftly(`unix://${path.join(server.dir, 'missing.sock')}?pass=${PASSWORD}`, {}, 'missing socket');
    const wrong = await failsSoftly(`unix://${server.socket}?pass=${PASSWORD}x`, {}, 'wrong password');
    console.log(`# Unix socket failures: ${missing} | ${wrong}`);
  });
});
