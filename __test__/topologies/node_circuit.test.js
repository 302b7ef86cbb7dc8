'use strict';
// One circuit breaker per data node. On a Redis Cluster of 3 primaries, one primary hung
// (SIGSTOP) opens only its own breaker: keys of the other primaries keep answering from Redis,
// keys of the hung one fail fast with ECIRCUITOPEN after circuitThreshold timeouts, ping().nodes,
// nodeStates() and the node_circuit_open gauge name the node, and after SIGCONT its breaker is
// closed again by a probe. Behind Sentinel, the primary a failover promotes starts with a closed
// breaker instead of inheriting the open one of the primary it replaced. Part of
// `npm run test:topologies`.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('../..');
const { startCluster, startSentinel, ask, until } = require('../helpers/topologies');

const COMMAND_TIMEOUT_MS = 300;
// What a call may take beyond commandTimeoutMs on a loaded 2-core machine.
const MARGIN_MS = 700;
const THRESHOLD = 3;
// What a call on a hung node fails with before its breaker opens: the command timed out, or
// the link it timed out on is being made again.
const LINK_FAILURES = ['ETIMEDOUT', 'ECACHEUNAVAILABLE'];

// One session read through the façade → { source, code, ms }: source 'cache' when Redis
// answered, 'database' when the loader did; code: the back-end failure the call absorbed.
async function read(cache, codes, token) {
  codes.length = 0;
  const t0 = performance.now();
  const s = await cache.getSessionWithFallback(token);
  return { source: s.source, code: codes[0], ms: performance.now() - t0 };
}

// gauge samples of `name`: { 'host:port': value }.
function gauge(cache, name) {
  const fam = cache.collectMetrics().find((f) => f.name === `bisman_cache_${name}`);
  return Object.fromEntries(fam.samples.map(([, labels, v]) => [labels.node, v]));
}

const circuitOf = (cache, address) => cache.ctx.bridge.native.nodeStates().find((n) => n.address === address)?.circuit;

describe('per-node circuit breakers on Redis Cluster', () => {
  let cluster;
  before(async () => {
    // a long node timeout: the hung primary is not failed over while the test holds it
    cluster = await startCluster({ nodeTimeoutMs: 30000 });
  });
  after(async () => {
    await cluster.stop();
  });

  it('a hung primary opens only its own breaker; the others answer from Redis; its probe closes it after SIGCONT', async () => {
    const codes = [];
    const events = [];
    const cache = createCache({
      cluster: cluster.urls,
      keyPrefix: 'nc:',
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      circuitThreshold: THRESHOLD,
      circuitCooldownMs: 1000,
      loaders: { session: async (token) => ({ user_id: 0, token }) },
    });
    cache.on('error', (err) => codes.push(err.code));
    cache.on('nodeCircuit', (e) => events.push(e));
    const ports = await cluster.primaries();
    assert.equal(ports.length, 3);
    const victim = ports[0];
    const victimAddr = `127.0.0.1:${victim}`;
    // four tokens whose session lives on each primary
    const slots = new Map();
    for (const port of ports) for (const [from, to, master] of await ask(port, 'CLUSTER', 'SLOTS')) slots.set(`${from}-${to}`, [from, to, master[1]]);
    const tokens = new Map(ports.map((p) => [p, []]));
    for (let i = 0; i < 500 && [...tokens.values()].some((t) => t.length < 4); i++) {
      const token = `node-circuit-${i}`;
      const slot = await ask(victim, 'CLUSTER', 'KEYSLOT', `nc:${cache.sessionKey(cache.hashToken(token))}`);
      const [, , port] = [...slots.values()].find(([from, to]) => slot >= from && slot <= to);
      if (tokens.get(port).length < 4) tokens.get(port).push(token);
    }
    const onVictim = tokens.get(victim);
    const healthy = ports.filter((p) => p !== victim).flatMap((p) => tokens.get(p));
    assert.equal(onVictim.length, 4);
    assert.equal(healthy.length, 8);
    const paused = cluster.node(victim);
    try {
      for (const token of [...onVictim, ...healthy]) {
        assert.equal(await cache.sessionCache.setSession(cache.hashToken(token), { user_id: 1 }), true);
        assert.equal((await read(cache, codes, token)).source, 'cache');
      }
      assert.equal(cache.stats().circuit, 'closed');
      paused.pause();
      try {
        // the hung primary's keys: THRESHOLD timeouts, then refused at once
        const hung = [];
        for (let i = 0; i < THRESHOLD + 3; i++) hung.push(await read(cache, codes, onVictim[i % onVictim.length]));
        console.log(`# hung primary: ${hung.map((r) => `${r.code} ${r.ms.toFixed(0)} ms`).join(', ')}`);
        for (const r of hung) {
          assert.equal(r.source, 'database');
          assert.ok(r.ms <= COMMAND_TIMEOUT_MS + MARGIN_MS, `a call on the hung primary took ${r.ms.toFixed(0)} ms`);
        }
        assert.ok(hung.slice(0, THRESHOLD).every((r) => LINK_FAILURES.includes(r.code)), JSON.stringify(hung));
        assert.deepEqual(hung.slice(THRESHOLD).map((r) => r.code), Array(3).fill('ECIRCUITOPEN'));
        assert.equal(circuitOf(cache, victimAddr), 'open');
        // the other primaries' keys: from Redis, no fallback, no failure
        const others = [];
        for (let round = 0; round < 3; round++) {
          for (const token of healthy) others.push(await read(cache, codes, token));
        }
        const slowest = Math.max(...others.map((r) => r.ms));
        console.log(`# healthy primaries while one hangs: ${others.length} reads, all from ${[...new Set(others.map((r) => r.source))]}, slowest ${slowest.toFixed(1)} ms`);
        assert.ok(others.every((r) => r.source === 'cache' && r.code === undefined), JSON.stringify(others));
        assert.ok(slowest <= COMMAND_TIMEOUT_MS + MARGIN_MS, `slowest ${slowest.toFixed(0)} ms`);
        // what the health surface says
        assert.equal(cache.stats().circuit, 'degraded');
        const open = gauge(cache, 'node_circuit_open');
        assert.deepEqual(Object.keys(open).sort(), ports.map((p) => `127.0.0.1:${p}`).sort());
        for (const [node, v] of Object.entries(open)) assert.equal(v, node === victimAddr ? 1 : 0, node);
        await until('the nodeCircuit open event', async () => events.some((e) => e.node === victimAddr && e.state === 'open'), 2000);
        assert.ok(events.every((e) => e.node === victimAddr), JSON.stringify(events));
      } finally {
        paused.resume();
      }
      // after SIGCONT: once the cool-down is over a read is let through as the probe; its
      // answer closes the breaker (no ping: that would close it by itself)
      const t0 = performance.now();
      let back = null;
      for (let i = 0; i < 200 && back === null && performance.now() - t0 < 10000; i++) {
        const r = await read(cache, codes, onVictim[0]);
        if (r.source === 'cache') back = performance.now() - t0;
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
      console.log(`# the hung primary's breaker closed by a probe ${back === null ? 'never' : `${back.toFixed(0)} ms`} after SIGCONT`);
      assert.ok(back !== null, 'no probe closed the breaker');
      assert.equal(circuitOf(cache, victimAddr), 'closed');
      assert.equal(cache.stats().circuit, 'closed');
      for (const token of onVictim) assert.equal((await read(cache, codes, token)).source, 'cache');
      await until('the nodeCircuit closed event', async () => events.some((e) => e.node === victimAddr && e.state === 'closed'), 2000);
      const p = await cache.ping();
      assert.equal(p.circuit, 'closed');
      assert.deepEqual(p.nodes.map((n) => n.circuit), ['closed', 'closed', 'closed']);
    } finally {
      paused.resume();
      await cache.shutdown();
    }
  });

  it('ping() goes to a node even while its breaker is open, reports it per node, and its success closes it', async () => {
    const codes = [];
    const cache = createCache({ cluster: cluster.urls, keyPrefix: 'np:', commandTimeoutMs: COMMAND_TIMEOUT_MS, circuitThreshold: 1, circuitCooldownMs: 60000, loaders: { session: async () => ({ user_id: 0 }) } });
    cache.on('error', (err) => codes.push(err.code));
    const ports = await cluster.primaries();
    const victim = ports[1];
    const victimAddr = `127.0.0.1:${victim}`;
    let token = null;
    for (let i = 0; i < 500 && token === null; i++) {
      const t = `node-ping-${i}`;
      if ((await cluster.primaryOf(`np:${cache.sessionKey(cache.hashToken(t))}`)) === victim) token = t;
    }
    assert.ok(token !== null);
    const paused = cluster.node(victim);
    try {
      assert.equal(await cache.sessionCache.setSession(cache.hashToken(token), { user_id: 1 }), true);
      assert.equal((await cache.ping()).circuit, 'closed');
      paused.pause();
      let p;
      try {
        assert.ok(LINK_FAILURES.includes((await read(cache, codes, token)).code));
        assert.equal((await read(cache, codes, token)).code, 'ECIRCUITOPEN');
        p = await cache.ping();
      } finally {
        paused.resume();
      }
      const bad = p.nodes.find((n) => n.address === victimAddr);
      console.log(`# ping while one breaker is open: circuit ${p.circuit}, nodes ${p.nodes.map((n) => `${n.address} ${n.pong} ${n.circuit}`).join('; ')}`);
      assert.equal(bad.pong, null, 'the PING went to the hung node');
      assert.ok(bad.ms >= COMMAND_TIMEOUT_MS - 50, `${bad.ms}`);
      assert.equal(bad.circuit, 'open');
      assert.ok(p.nodes.filter((n) => n !== bad).every((n) => n.pong === 'PONG' && n.circuit === 'closed'), JSON.stringify(p.nodes));
      assert.equal(p.circuit, 'degraded');
      // a health check's PING closes it (the 60 s cool-down is not waited for)
      await until('a ping closes the breaker', async () => (await cache.ping()).nodes.every((n) => n.circuit === 'closed'), 5000);
      assert.equal((await read(cache, codes, token)).source, 'cache');
    } finally {
      paused.resume();
      await cache.shutdown();
    }
  });
});

describe('per-node circuit breakers behind Sentinel', () => {
  let setup;
  before(async () => {
    // no automatic failover while the test holds the primary: it forces one
    setup = await startSentinel({ downAfterMs: 30000 });
  });
  after(async () => {
    await setup.stop();
  });

  it('the primary a failover promotes starts with a closed breaker', async () => {
    const codes = [];
    const cache = createCache({
      sentinel: { masterName: setup.masterName, nodes: setup.nodes },
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      connectTimeoutMs: 1000,
      circuitThreshold: THRESHOLD,
      // long enough that only a new breaker can explain calls answered before it ends
      circuitCooldownMs: 60000,
      loaders: { session: async () => ({ user_id: 0 }) },
    });
    cache.on('error', (err) => codes.push(err.code));
    const oldPort = await setup.primaryPort();
    const old = setup.server(oldPort);
    try {
      assert.equal(await cache.sessionCache.setSession(cache.hashToken('before'), { user_id: 1 }), true);
      assert.equal((await read(cache, codes, 'before')).source, 'cache');
      old.pause();
      let switched;
      try {
        const hung = [];
        for (let i = 0; i < THRESHOLD + 1; i++) hung.push((await read(cache, codes, 'before')).code);
        assert.ok(hung.slice(0, THRESHOLD).every((c) => LINK_FAILURES.includes(c)), String(hung));
        assert.equal(hung[THRESHOLD], 'ECIRCUITOPEN');
        assert.equal(cache.stats().circuit, 'open');
        assert.deepEqual(gauge(cache, 'node_circuit_open'), { [`127.0.0.1:${oldPort}`]: 1 });
        switched = await setup.failover();
        // the new primary answers well within the old breaker's 60 s cool-down
        const t0 = performance.now();
        let answered = null;
        for (let i = 0; i < 200 && answered === null && performance.now() - t0 < 10000; i++) {
          const token = `after-${i}`;
          if (await cache.sessionCache.setSession(cache.hashToken(token), { user_id: 2 })) {
            if ((await read(cache, codes, token)).source === 'cache') answered = performance.now() - t0;
          }
          if (answered === null) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        console.log(`# sentinel: failover ${switched.from} → ${switched.to}; the new primary answered from its own (closed) breaker ${answered === null ? 'never' : `${answered.toFixed(0)} ms`} after the switch, the old one's still open`);
        assert.ok(answered !== null && answered < 10000, 'the new primary never answered');
      } finally {
        old.resume();
      }
      const nodes = cache.ctx.bridge.native.nodeStates();
      assert.deepEqual(nodes.map((n) => [n.address, n.circuit]), [[`127.0.0.1:${switched.to}`, 'closed']]);
      assert.equal(cache.stats().circuit, 'closed');
    } finally {
      old.resume();
      await cache.shutdown();
    }
  });
});
