'use strict';
// The two back ends every behavioural suite runs against, with the same inspection surface:
// a real redis-server (DBSIZE/SCAN/PTTL through ioredis) and the embedded memory:// store.

const crypto = require('crypto');
const native = require('../../binding.js');
const { startRedis } = require('./redis');

async function redisBackend() {
  const server = await startRedis();
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
    keys: async () => native.memoryStoreKeys(name),
    pttl: async (key) => native.memoryStorePttl(name, key),
    smembers: null,
    flush: async () => {},
    close: async () => {},
  };
}

const BACKENDS = [
  ['redis', redisBackend],
  ['memory', memoryBackend],
];

module.exports = { BACKENDS, redisBackend, memoryBackend };
