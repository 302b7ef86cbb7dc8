'use strict';
// Events for logging: 'error' for every back-end failure a call absorbed, 'circuit' when the
// back end goes down and comes back, 'reconnect' when it answers again. Against a real
// redis-server that is killed and restarted on the same port.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const cache = require('..');
const { createCache } = cache;
const { startRedis, sleep } = require('./helpers/redis');

// Resolves with `fn()`'s first truthy answer, polling every 10 ms for at most `ms`.
async function within(ms, fn, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = fn();
    if (v) return v;
    await sleep(10);
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

describe('cache events', () => {
  let server;
  let c;
  before(async () => {
    server = await startRedis();
    c = createCache({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300, loaders: { session: async () => ({ user_id: 1 }) } });
    assert.equal((await c.ping()).pong, 'PONG');
  });
  after(async () => {
    await c.shutdown();
    await server.stop();
  });

  it("'circuit' opens when Redis dies, 'error' reports each absorbed failure, and the call still falls back", async () => {
    const circuit = [];
    const errors = [];
    const onCircuit = (e) => circuit.push(e.state);
    const onError = (err, service) => errors.push([service, err.code]);
    c.on('circuit', onCircuit);
    c.on('error', onError);
    // a throwing listener is logged, never changes an answer
    const thrower = () => {
      throw new Error('listener bug');
    };
    c.on('error', thrower);
    const logged = [];
    const origError = console.error;
    console.error = (...a) => logged.push(a.join(' '));
    try {
      await sleep(150); // the first poll sees the link up: no event
      assert.deepEqual(circuit, []);
      await server.kill();
      const s = await c.getSessionWithFallback('t');
      assert.equal(s.source, 'database');
      await within(5000, () => circuit.includes('open'), "circuit 'open'");
      assert.ok(errors.length >= 1);
      assert.equal(errors[0][0], 'session');
      assert.equal(typeof errors[0][1], 'string');
      assert.ok(logged.some((l) => l.includes("'error' listener threw")));
      assert.equal(c.stats().session.errors, errors.filter(([svc]) => svc === 'session').length);
    } finally {
      console.error = origError;
      c.off('error', thrower);
      c.off('error', onError);
      c.off('circuit', onCircuit);
    }
  });

  it("'reconnect' and circuit 'closed' when Redis is back", async () => {
    const events = [];
    const onCircuit = (e) => events.push(`circuit:${e.state}`);
    const onReconnect = () => events.push('reconnect');
    c.on('circuit', onCircuit);
    c.once('reconnect', onReconnect);
    try {
      await within(3000, () => events.includes('circuit:open'), "circuit 'open' reported to a new listener while down");
      await server.start(); // same port
      // traffic lets the link notice; the transport also reconnects by itself
      await within(10000, () => {
        c.ping();
        return events.includes('reconnect');
      }, 'reconnect');
      assert.deepEqual(events.slice(-2), ['circuit:closed', 'reconnect']);
      assert.equal(c.listenerCount('reconnect'), 0); // once
      assert.equal((await c.ping()).pong, 'PONG');
    } finally {
      c.off('circuit', onCircuit);
    }
  });

  it('the module-level on/off listen to the default instance', async () => {
    const got = [];
    const l = (e) => got.push(e.state);
    assert.equal(cache.on('circuit', l), cache);
    cache.configure({ url: 'memory://events' });
    await sleep(250);
    assert.deepEqual(got, []); // memory:// is always up
    cache.off('circuit', l);
    await cache.shutdown();
  });

  it("a 'circuit' listener left in place does not keep Node alive", () => {
    const { spawnSync } = require('child_process');
    const r = spawnSync(process.execPath, ['-e', `const c = require(${JSON.stringify(require.resolve('..'))}).createCache({ url: 'memory://alive' }); c.on('circuit', () => {}); c.on('reconnect', () => {}); c.ping().then(() => console.log('done'));`], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'done');
  });
});
