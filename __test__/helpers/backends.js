'use strict';
// The two back ends every behavioural suite runs against, with the same inspection surface:
// a real redis-server (DBSIZE/SCAN/PTTL through ioredis) and the embedded memory:// store.

const crypto = require('crypto');
const hooks = require('./hooks');
const Redis = require('ioredis');
const { startRedis } = require('./redis');

// BISMAN_REDIS_ACL=1: the suites run as the least-privilege user of ./acl.js (default user
// off); the inspection client stays an admin.
async function redisBackend() {
  const server = process.env.BISMAN_REDIS_ACL === '1' ? await require('./acl').startAclRedis() : await startRedis();
  const client = server.client();
  return {
    name: 'redis',
    url: server.url,
    server,
    keys: async () => {
      const out = [];
      let cursor = '0';
      do {
        const [next, batch] = await client.scan(cursor, 'COUNT', 1000);
        cursor = next;
        out.push(...batch);
      } while (cursor !== '0');
      return out;
    },
    pttl: (key) => client.pttl(key),
    smembers: (key) => client.smembers(key),
    flush: () => client.flushall(),
    close: () => server.stop(),
  };
}

async function memoryBackend() {
  const name = `t${crypto.randomBytes(6).toString('hex')}`;
  return {
    name: 'memory',
    url: `memory://${name}`,
    keys: async () => hooks.memoryStoreKeys(name),
    pttl: async (key) => hooks.memoryStorePttl(name, key),
    smembers: null,
    flush: async () => {},
    close: async () => {},
  };
}

// Redis Cluster (3 primaries, 3 replicas) and Sentinel (1 primary, 1 replica, 3 sentinels),
// reached with the URL forms `redis+cluster://h:p,h:p…` and `redis+sentinel://h:p,…/name`.
// `server` is an object whose client() is a topology-aware ioredis client.
// The behavioural suites use slow failure detection (a loaded 2-core machine must not fail
// over by mistake); the failover tests ask for fast detection.
async function clusterBackend({ nodeTimeoutMs = 5000 } = {}) {
  const { startCluster } = require('./topologies');
  const cluster = await startCluster({ nodeTimeoutMs });
  const clients = [];
  const client = () => {
    const c = new Redis.Cluster(cluster.urls.map((u) => ({ host: '127.0.0.1', port: Number(u.split(':').pop()) })), { redisOptions: { maxRetriesPerRequest: 1 } });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const inspect = client();
  const backend = {
    name: 'cluster',
    // CROSSSLOT errors a test provoked on purpose (to show that the count works)
    deliberateCrossslot: 0,
    url: `redis+cluster://${cluster.urls.map((u) => u.slice('redis://'.length)).join(',')}`,
    cluster,
    server: null,
    topology: { client },
    keys: () => cluster.keys(),
    pttl: (key) => inspect.pttl(key),
    smembers: (key) => inspect.smembers(key),
    // one SET per key: keys of different slots cannot share a pipeline on a cluster
    seed: async (keys) => {
      for (let i = 0; i < keys.length; i += 200) await Promise.all(keys.slice(i, i + 200).map((k) => inspect.set(k, 'v', 'EX', 600)));
    },
    flush: () => cluster.flush(),
    // every suite on the cluster must end with 0 CROSSSLOT errors on every node
    close: async () => {
      let crossslot;
      try {
        crossslot = await cluster.errorCount('CROSSSLOT');
      } finally {
        for (const c of clients) c.disconnect();
        await cluster.stop();
      }
      crossslot -= backend.deliberateCrossslot;
      if (crossslot !== 0) throw new Error(`the cluster answered ${crossslot} CROSSSLOT error(s)`);
    },
  };
  return backend;
}

async function sentinelBackend({ downAfterMs = 5000 } = {}) {
  const { startSentinel } = require('./topologies');
  const setup = await startSentinel({ downAfterMs });
  const clients = [];
  const client = () => {
    const c = new Redis({ sentinels: setup.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name: setup.masterName, maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const inspect = client();
  return {
    name: 'sentinel',
    url: `redis+sentinel://${setup.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${setup.masterName}`,
    setup,
    // the primary at start (the behavioural suites run no failover): direct clients to it,
    // which MONITOR needs (ioredis' Sentinel mode does not support it)
    server: setup.servers[0],
    topology: { client },
    keys: async () => {
      const out = [];
      let cursor = '0';
      do {
        const [next, batch] = await inspect.scan(cursor, 'COUNT', 1000);
        cursor = next;
        out.push(...batch);
      } while (cursor !== '0');
      return out;
    },
    pttl: (key) => inspect.pttl(key),
    smembers: (key) => inspect.smembers(key),
    flush: () => inspect.flushall(),
    close: async () => {
      for (const c of clients) c.disconnect();
      await setup.stop();
    },
  };
}

// `BISMAN_TOPOLOGY=cluster|sentinel` (npm run test:topologies) runs the behavioural suites on
// that topology instead.
const TOPOLOGIES = { cluster: clusterBackend, sentinel: sentinelBackend };
const topology = process.env.BISMAN_TOPOLOGY;
const BACKENDS = topology && TOPOLOGIES[topology]
  ? [[topology, () => TOPOLOGIES[topology]()]]
  : [
      ['redis', redisBackend],
      ['memory', memoryBackend],
    ];

module.exports = { BACKENDS, redisBackend, memoryBackend, clusterBackend, sentinelBackend };
