'use strict';
// The TracingChannel `bisman-cache:operation` (lib/tracing.js) and the OpenTelemetry recipe
// (examples/opentelemetry.js), on memory:// and on a real redis-server: the context of each
// public operation names its service, operation and key family, never a token, a token hash,
// an IP or an id, carries no result, and the server fields when one redis:// server is used.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const dc = require('node:diagnostics_channel');
const crypto = require('crypto');
const { createCache, hashToken } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { startRedis } = require('./helpers/redis');
const { trace } = require('@opentelemetry/api');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { instrumentBismanCache } = require('../examples/opentelemetry');

const CHANNEL = 'bisman-cache:operation';
const uid = () => crypto.randomBytes(6).toString('hex');

// Records every event of the channel: [event, a copy of the context's fields at that moment].
function record() {
  const events = [];
  const on = (event) => (c) => events.push([event, { ...c }, c]);
  const handlers = { start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') };
  const channel = dc.tracingChannel(CHANNEL);
  channel.subscribe(handlers);
  return { events, stop: () => channel.unsubscribe(handlers) };
}

// The secrets one scenario uses; none may appear in any published string.
function assertNoSecret(values, secrets) {
  for (const v of values) {
    if (typeof v !== 'string' && typeof v !== 'number') continue;
    for (const s of secrets) assert.ok(!String(v).includes(String(s)), `${JSON.stringify(v)} contains the secret ${s}`);
  }
}

for (const [name, make] of BACKENDS) {
  describe(`tracing channel on ${name}`, () => {
    let backend;
    let cache;
    const token = `tok-${uid()}`;
    const userId = 987654;
    const ip = '10.77.66.55';
    before(async () => {
      backend = await make();
      cache = createCache({
        url: backend.url,
        keyPrefix: `tr${uid()}:`,
        loaders: { session: async (t) => (t === token ? { user_id: userId, expires_at: new Date(Date.now() + 60000).toISOString() } : null) },
      });
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    it('publishes start, end, asyncStart and asyncEnd around each public operation, with service, operation and key family only', async () => {
      const rec = record();
      try {
        assert.equal((await cache.getSessionWithFallback(token)).source, 'database');
        assert.equal((await cache.sessionCache.getSession(hashToken(token))).user_id, userId);
        assert.equal((await cache.rateLimiter.checkLimit(ip, '/api/auth/login')).allowed, true);
        const lock = await cache.distributedLock.acquireApprovalLock(userId);
        assert.equal(lock.acquired, true);
        assert.equal(await cache.distributedLock.release('approval', userId, lock.owner), true);
        assert.equal((await cache.ping()).pong, 'PONG');
      } finally {
        rec.stop();
      }
      const starts = rec.events.filter(([e]) => e === 'start').map(([, c]) => c);
      const seen = starts.map((c) => `${c.service}.${c.operation}:${c.keyFamily}`);
      assert.deepEqual(seen, [
        'session.getSessionWithFallback:session',
        'session.getSession:session',
        'rateLimit.checkLimit:rate',
        'lock.acquireApprovalLock:lock:approval',
        'lock.acquire:lock:approval',
        'lock.release:lock:approval',
        'health.ping:undefined',
      ]);
      // every call: start, end (synchronous part), then asyncStart and asyncEnd on the same object
      for (const [, , obj] of rec.events.filter(([e]) => e === 'start')) {
        const mine = rec.events.filter(([, , o]) => o === obj).map(([e]) => e);
        assert.deepEqual(mine, ['start', 'end', 'asyncStart', 'asyncEnd']);
        assert.equal('result' in obj, false, 'no answer is published');
        assert.equal('error' in obj, false);
      }
      const secrets = [token, hashToken(token), ip, userId];
      assertNoSecret(rec.events.flatMap(([, c]) => Object.values(c)), secrets);
      for (const [, c] of rec.events) {
        for (const k of Object.keys(c)) assert.ok(['service', 'operation', 'keyFamily', 'serverAddress', 'serverPort', 'dbIndex'].includes(k), k);
      }
    });

    it('publishes error (and the context keeps it) when a call rejects; a lock resource that could be an id is not named', async () => {
      const rec = record();
      try {
        await assert.rejects(cache.sessionCache.getSession(42), { code: 'ERR_INVALID_ARG' });
        const lock = await cache.distributedLock.acquire('user-a1b2c3', 7);
        await cache.distributedLock.release('user-a1b2c3', 7, lock.owner);
      } finally {
        rec.stop();
      }
      const failed = rec.events.filter(([e, c]) => e === 'error' && c.operation === 'getSession');
      assert.equal(failed.length, 1);
      assert.equal(failed[0][2].error.code, 'ERR_INVALID_ARG');
      const order = rec.events.filter(([, , o]) => o === failed[0][2]).map(([e]) => e);
      assert.deepEqual(order, ['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      const families = rec.events.filter(([e, c]) => e === 'start' && c.service === 'lock').map(([, c]) => c.keyFamily);
      assert.deepEqual(families, ['lock', 'lock'], 'a resource with digits is shown as the bare family');
    });

    it('publishes nothing once the subscriber leaves, and answers the same', async () => {
      const rec = record();
      rec.stop();
      assert.equal(dc.tracingChannel(CHANNEL).hasSubscribers, false);
      assert.equal((await cache.rateLimiter.checkLimit(ip, '/api/other')).allowed, true);
      assert.equal(rec.events.length, 0);
    });

    it('names the server (address, port, database index) only for a single redis:// server', async () => {
      const rec = record();
      try {
        await cache.ping();
      } finally {
        rec.stop();
      }
      const [, c] = rec.events[0];
      if (name === 'memory') {
        assert.equal(c.serverAddress, undefined);
        assert.equal(c.serverPort, undefined);
      } else {
        const u = new URL(backend.url);
        assert.equal(c.serverAddress, u.hostname);
        assert.equal(c.serverPort, Number(u.port));
        assert.equal(c.dbIndex, 0);
      }
    });
  });

  describe(`OpenTelemetry recipe (examples/opentelemetry.js) on ${name}`, () => {
    let backend;
    let cache;
    let exporter;
    let provider;
    let stop;
    const token = `otel-${uid()}`;
    const userId = 4242;
    const ip = '192.168.213.77';
    before(async () => {
      backend = await make();
      cache = createCache({
        url: backend.url,
        keyPrefix: `ot${uid()}:`,
        loaders: { session: async () => ({ user_id: userId, expires_at: new Date(Date.now() + 60000).toISOString() }) },
      });
      exporter = new InMemorySpanExporter();
      provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      stop = instrumentBismanCache({ tracer: provider.getTracer('test') });
    });
    after(async () => {
      stop();
      await provider.shutdown();
      await cache.shutdown();
      await backend.close();
    });

    it('makes a CLIENT span per operation with the Redis semantic-convention attributes, status ERROR for a failing call, and no secret in any attribute', async () => {
      exporter.reset();
      await cache.getSessionWithFallback(token);
      assert.equal((await cache.sessionCache.getSession(hashToken(token))).user_id, userId);
      await cache.rateLimiter.checkLimit(ip, '/api/auth/login');
      await assert.rejects(cache.rateLimiter.checkLimit(ip, 17), { code: 'ERR_INVALID_ARG' });
      const spans = exporter.getFinishedSpans();
      const byName = (n) => spans.filter((s) => s.name === n);
      assert.deepEqual(spans.map((s) => s.name), ['getSessionWithFallback session', 'getSession session', 'checkLimit rate', 'checkLimit rate']);
      const get = byName('getSession session')[0];
      assert.equal(get.kind, 2 /* SpanKind.CLIENT */);
      assert.equal(get.attributes['db.system.name'], 'redis');
      assert.equal(get.attributes['db.operation.name'], 'getSession');
      assert.equal(get.attributes['bisman_cache.service'], 'session');
      assert.equal(get.status.code, 0 /* UNSET */);
      const [ok, bad] = byName('checkLimit rate');
      assert.equal(ok.status.code, 0);
      assert.equal(bad.status.code, 2 /* ERROR */);
      assert.equal(bad.attributes['error.type'], 'ERR_INVALID_ARG');
      if (name === 'memory') {
        assert.equal(get.attributes['server.address'], undefined);
      } else {
        const u = new URL(backend.url);
        assert.equal(get.attributes['server.address'], u.hostname);
        assert.equal(get.attributes['server.port'], Number(u.port));
        assert.equal(get.attributes['db.namespace'], '0');
      }
      const secrets = [token, hashToken(token), ip, userId];
      assertNoSecret(spans.flatMap((s) => [s.name, s.status.message, ...Object.values(s.attributes)]), secrets);
      assert.equal(trace.getActiveSpan(), undefined);
    });
  });
}

describe('tracing with a password in the URL', () => {
  it('never publishes the password or the user name', async () => {
    const server = await startRedis({ password: `pw${uid()}` });
    const cache = createCache({ url: server.url.replace('redis://:', 'redis://admin-x:'), keyPrefix: `pw${uid()}:` });
    const rec = record();
    try {
      await cache.ping();
      await cache.sessionCache.getSession('abc');
    } finally {
      rec.stop();
      await cache.shutdown();
      await server.stop();
    }
    assert.ok(rec.events.length >= 8);
    assertNoSecret(rec.events.flatMap(([, c]) => Object.values(c)), [server.password, 'admin-x']);
    assert.equal(rec.events[0][1].serverAddress, '127.0.0.1');
  });
});
