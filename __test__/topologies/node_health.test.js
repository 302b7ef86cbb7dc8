'use strict';
// Per-node health and the connection options on real topologies: ping() lists every cluster
// primary (and the primary behind sentinels) with its own PONG, metrics() has a node_up gauge
// per node, connectionName names every connection on every node (pipelines and the subscriber),
// and a password for the data nodes works on both (requirepass set on every data node; the
// sentinels told with auth-pass). Part of `npm run test:topologies`.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('../..');
const { startCluster, startSentinel, ask, until } = require('../helpers/topologies');

const PASSWORD = 'topo-data-s3cret';

// The names of the clients of the node at `port` (but the asking one).
async function namesOn(port) {
  const list = await ask(port, 'CLIENT', 'LIST');
  return list
    .split('\n')
    .map((l) => /(?:^| )name=(\S*)/.exec(l))
    .filter((m) => m !== null && m[1] !== '')
    .map((m) => m[1]);
}

// node_up samples of `cache`: { 'host:port': value }.
function nodeUp(cache) {
  const fam = cache.collectMetrics().find((f) => f.name === 'bisman_cache_node_up');
  return Object.fromEntries(fam.samples.map(([, labels, v]) => [labels.node, v]));
}

describe('per-node health on Redis Cluster', () => {
  let cluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await cluster.stop();
  });

  it('ping() has one PONG per primary, metrics() one node_up per primary, every connection named', async () => {
    const cache = createCache({ cluster: cluster.urls, connectionName: 'erp-c', keyPrefix: 'nh:' });
    try {
      assert.equal(await cache.pubsub.subscribe(), true);
      for (let i = 0; i < 30; i++) assert.equal(await cache.sessionCache.setSession(`s${i}`, { user_id: i }), true);
      const p = await cache.ping();
      const primaries = (await cluster.primaries()).map((port) => `127.0.0.1:${port}`).sort();
      console.log(`# cluster ping: ${p.nodes.map((n) => `${n.address} ${n.pong} ${n.ms} ms`).join('; ')}`);
      assert.equal(p.pong, 'PONG');
      assert.deepEqual(p.nodes.map((n) => n.address).sort(), primaries);
      for (const n of p.nodes) {
        assert.equal(n.role, 'primary');
        assert.equal(n.pong, 'PONG');
        assert.ok(typeof n.ms === 'number' && n.ms >= 0 && n.error === undefined);
      }
      const up = nodeUp(cache);
      assert.deepEqual(Object.keys(up).sort(), primaries);
      assert.ok(Object.values(up).every((v) => v === 1), JSON.stringify(up));
      assert.match(cache.metrics(), /bisman_cache_node_up\{node="127\.0\.0\.1:\d+"\} 1/);
      // every primary got a session (30 keys over 3 primaries), so each has a named pipeline
      let subs = 0;
      for (const port of await cluster.primaries()) {
        const names = await namesOn(port);
        assert.ok(names.includes('erp-c'), `${port}: ${names}`);
        assert.ok(names.every((n) => n === 'erp-c' || n === 'erp-c:sub'), `${port}: ${names}`);
        subs += names.filter((n) => n === 'erp-c:sub').length;
      }
      assert.equal(subs, 1, 'one named subscriber connection');
    } finally {
      cache.shutdown();
    }
  });

  it('a paused primary shows in ping().nodes with its error, the others answer', async () => {
    const cache = createCache({ cluster: cluster.urls, commandTimeoutMs: 300 });
    const ports = await cluster.primaries();
    const paused = cluster.node(ports[0]);
    try {
      assert.equal((await cache.ping()).pong, 'PONG');
      paused.pause();
      let p;
      try {
        p = await cache.ping();
      } finally {
        paused.resume();
      }
      const bad = p.nodes.find((n) => n.address === `127.0.0.1:${ports[0]}`);
      console.log(`# paused primary: ${JSON.stringify(bad)}`);
      assert.equal(bad.pong, null);
      assert.equal(typeof bad.error, 'string');
      assert.ok(bad.ms >= 250, `${bad.ms}`);
      assert.deepEqual(p.nodes.filter((n) => n !== bad).map((n) => n.pong), ['PONG', 'PONG']);
    } finally {
      cache.shutdown();
    }
  });

  it('password applies to every node (requirepass on all of them)', async () => {
    for (const n of cluster.nodes) {
      await ask(n.port, 'CONFIG', 'SET', 'masterauth', PASSWORD);
      await ask(n.port, 'CONFIG', 'SET', 'requirepass', PASSWORD);
    }
    const without = createCache({ cluster: cluster.urls, commandTimeoutMs: 500 });
    const cache = createCache({ cluster: cluster.urls, password: PASSWORD, keyPrefix: 'pw:' });
    try {
      const refused = await without.ping();
      assert.equal(refused.pong, null);
      assert.ok(!JSON.stringify(refused).includes(PASSWORD));
      for (let i = 0; i < 30; i++) assert.equal(await cache.sessionCache.setSession(`p${i}`, { user_id: i }), true);
      const p = await cache.ping();
      assert.equal(p.pong, 'PONG');
      assert.equal(p.nodes.length, 3);
      assert.ok(p.nodes.every((n) => n.pong === 'PONG'), JSON.stringify(p.nodes));
    } finally {
      without.shutdown();
      cache.shutdown();
    }
  });
});

describe('per-node health behind Sentinel', () => {
  let setup;
  before(async () => {
    setup = await startSentinel();
  });
  after(async () => {
    await setup.stop();
  });

  it('ping() names the primary, metrics() has its node_up, every connection named', async () => {
    const cache = createCache({ sentinel: { masterName: setup.masterName, nodes: setup.nodes }, connectionName: 'erp-s' });
    try {
      assert.equal(await cache.pubsub.subscribe(), true);
      const p = await cache.ping();
      const primary = await setup.primaryPort();
      console.log(`# sentinel ping: ${JSON.stringify(p.nodes)}`);
      assert.equal(p.pong, 'PONG');
      assert.deepEqual(p.nodes.map((n) => [n.address, n.role, n.pong]), [[`127.0.0.1:${primary}`, 'primary', 'PONG']]);
      assert.deepEqual(nodeUp(cache), { [`127.0.0.1:${primary}`]: 1 });
      // the sentinels' own connections to the primary are named sentinel-…
      const names = (await namesOn(primary)).filter((n) => !n.startsWith('sentinel-'));
      assert.deepEqual(names.sort(), ['erp-s', 'erp-s:sub']);
    } finally {
      cache.shutdown();
    }
  });

  it('password reaches the data nodes behind the sentinels', async () => {
    for (const s of setup.servers) {
      await ask(s.port, 'CONFIG', 'SET', 'masterauth', PASSWORD);
      await ask(s.port, 'CONFIG', 'SET', 'requirepass', PASSWORD);
    }
    for (const s of setup.sentinels) await ask(s.port, 'SENTINEL', 'SET', setup.masterName, 'auth-pass', PASSWORD);
    const sentinel = { masterName: setup.masterName, nodes: setup.nodes };
    const without = createCache({ sentinel, commandTimeoutMs: 500 });
    const cache = createCache({ sentinel, password: PASSWORD, connectionName: 'erp-s2' });
    try {
      const refused = await without.ping();
      assert.equal(refused.pong, null);
      assert.match(refused.error, /NOAUTH|auth/i);
      await until('the data node answers with the password', async () => (await cache.ping()).pong === 'PONG', 5000);
      assert.equal(await cache.sessionCache.setSession('sp', { user_id: 9 }), true);
      assert.equal((await cache.sessionCache.getSession('sp')).user_id, 9);
      assert.equal((await cache.ping()).nodes[0].pong, 'PONG');
    } finally {
      without.shutdown();
      cache.shutdown();
    }
  });
});
