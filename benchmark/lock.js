'use strict';
// Lock benchmark: acquire+release pairs per second, 64 pairs in flight, each pair on its own id.
//
//   node benchmark/lock.js [pairsPerRun=20000] [runs=5]
//
// Contenders, all on the same fresh redis-server started for this run, measured in alternating
// order, median of `runs` runs each (after one warm-up run each):
//   - @bisman/cache distributedLock.acquire + release (owner from the OS CSPRNG, SET NX PX and
//     the fence counter in one script; compare-and-delete script),
//   - a plain ioredis implementation: owner from crypto.randomBytes(16), SET key owner NX PX,
//     release by a Lua compare-and-delete (EVALSHA via defineCommand); no fencing token,
//   - the same with ioredis' enableAutoPipelining,
//   - ioredis (auto-pipelined) running *our* acquire script (SET NX PX + fence counter) and
//     release script: the same Redis work as ours, so this line isolates the client side.

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');
const { createCache } = require('..');

function redisHelper() {
  try {
    return require('./lib/redis.js');
  } catch {
    return require(path.join(__dirname, '..', '__test__', 'helpers', 'redis.js'));
  }
}

const PAIRS = Number(process.argv[2] || 20000);
const RUNS = Number(process.argv[3] || 5);
const IN_FLIGHT = 64;
const TTL_SEC = 30;

const RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

function plainLock(redis, nodeId) {
  redis.defineCommand('lockRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
  return {
    async acquire(resource, id) {
      const owner = `${nodeId}:${process.pid}:${crypto.randomBytes(16).toString('hex')}`;
      const ok = await redis.set(`lock:${resource}:${id}`, owner, 'PX', TTL_SEC * 1000, 'NX');
      return ok === 'OK' ? { acquired: true, owner } : { acquired: false, heldBy: await redis.get(`lock:${resource}:${id}`) };
    },
    async release(resource, id, owner) {
      return (await redis.lockRelease(`lock:${resource}:${id}`, owner)) === 1;
    },
  };
}

const SCRIPTS = path.join(__dirname, '..', 'src', 'store', 'scripts');
const FENCE_TTL_MS = 7 * 24 * 3600 * 1000;

function fencedLock(redis, nodeId) {
  redis.defineCommand('lockAcquireFenced', { numberOfKeys: 2, lua: fs.readFileSync(path.join(SCRIPTS, 'lock_acquire.lua'), 'utf8') });
  redis.defineCommand('lockReleaseOwned', { numberOfKeys: 1, lua: fs.readFileSync(path.join(SCRIPTS, 'lock_release.lua'), 'utf8') });
  return {
    async acquire(resource, id) {
      const owner = `${nodeId}:${process.pid}:${crypto.randomBytes(16).toString('hex')}`;
      const key = `lock:${resource}:${id}`;
      const r = await redis.lockAcquireFenced(key, `lock-fence:{${key}}`, owner, TTL_SEC * 1000, FENCE_TTL_MS);
      return r[0] === 1 ? { acquired: true, owner, fence: Number(r[1]) } : { acquired: false, heldBy: r[1] };
    },
    async release(resource, id, owner) {
      return (await redis.lockReleaseOwned(`lock:${resource}:${id}`, owner)) === 1;
    },
  };
}

// PAIRS acquire+release pairs, IN_FLIGHT at a time, every pair on a fresh id → pairs/s.
async function run(lock, tag) {
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < PAIRS) {
      const id = `${tag}:${next++}`;
      const l = await lock.acquire('bench', id);
      if (!l.acquired) {
        failed++;
        continue;
      }
      if (!(await lock.release('bench', id, l.owner))) failed++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (failed) throw new Error(`${tag}: ${failed} pairs failed`);
  return PAIRS / secs;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function usedMemory(client) {
  const info = await client.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

async function main() {
  const { startRedis } = redisHelper();
  const server = await startRedis();
  const admin = server.client();
  const ours = createCache({ url: server.url, nodeId: 'bench' });
  const plainClient = new Redis(server.url);
  const pipelinedClient = new Redis(server.url, { enableAutoPipelining: true });
  const fencedClient = new Redis(server.url, { enableAutoPipelining: true });
  const contenders = [
    ['@bisman/cache', ours.distributedLock],
    ['ioredis', plainLock(plainClient, 'bench')],
    ['ioredis autopipelining', plainLock(pipelinedClient, 'bench')],
    ['ioredis AP, our scripts', fencedLock(fencedClient, 'bench')],
  ];
  const results = Object.fromEntries(contenders.map(([name]) => [name, []]));
  try {
    for (const [name, lock] of contenders) await run(lock, `warm-${name}`);
    await admin.flushall();
    const memBefore = await usedMemory(admin);
    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 === 0 ? contenders : [...contenders].reverse();
      for (const [name, lock] of order) results[name].push(await run(lock, `r${r}-${name}`));
    }
    // What stays behind: no lock key; the fenced runs leave one fence counter per distinct id
    // (7-day TTL).
    const leftKeys = await admin.dbsize();
    const lockKeys = (await admin.keys('lock:*')).length;
    const bytesPerFence = leftKeys ? Math.round((await usedMemory(admin) - memBefore) / leftKeys) : 0;

    const cpu = os.cpus()[0] ? os.cpus()[0].model : 'unknown CPU';
    const version = (await admin.info('server')).match(/redis_version:(\S+)/)[1];
    console.log(`lock acquire+release pairs/s, ${IN_FLIGHT} in flight on distinct ids, ${PAIRS} pairs per run, median of ${RUNS} alternating runs`);
    console.log(`machine: ${os.cpus().length} × ${cpu}, Node ${process.version}, Redis ${version} on loopback`);
    for (const [name] of contenders) {
      const xs = results[name];
      console.log(`  ${name.padEnd(24)} ${Math.round(median(xs)).toString().padStart(7)} pairs/s   runs: ${xs.map((x) => Math.round(x)).join(', ')}`);
    }
    const base = median(results.ioredis);
    const ours = median(results['@bisman/cache']);
    console.log(`  @bisman/cache / ioredis: ${(ours / base).toFixed(2)}×; / ioredis autopipelining: ${(ours / median(results['ioredis autopipelining'])).toFixed(2)}×; / ioredis AP with our scripts: ${(ours / median(results['ioredis AP, our scripts'])).toFixed(2)}×`);
    console.log(`  left behind: ${lockKeys} lock keys, ${leftKeys} fence counters (${bytesPerFence} bytes of Redis memory each, 7-day TTL)`);
  } finally {
    plainClient.disconnect();
    pipelinedClient.disconnect();
    fencedClient.disconnect();
    await ours.shutdown();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
