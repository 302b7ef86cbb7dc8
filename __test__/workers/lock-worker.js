'use strict';
// A separate Node process taking locks on a shared Redis, for the multi-process lock tests.
//   node lock-worker.js counter <url> <n> <tag>  n withLock read-sleep-write increments of
//       `counter`, with a holder gauge; prints { maxGauge, lost, fences }
//   node lock-worker.js fence <url> <n> <tag>    n acquire/RPUSH fence/release; prints { grants }
//   node lock-worker.js exit <url> <ttlSec>      one short withLock, then shutdown(); the
//       process must exit by itself (no watchdog timer left behind)

const Redis = require('ioredis');
const { createCache } = require('../..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const yieldNow = () => new Promise((r) => setImmediate(r));

async function counter(url, n, tag) {
  const cache = createCache({ url, nodeId: `counter${tag}` });
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  let maxGauge = 0;
  let lost = 0;
  for (let i = 0; i < n; i++) {
    const out = await cache.distributedLock.withLock(
      'counter',
      'shared',
      async ({ fence }) => {
        const holders = await redis.incr('holders');
        if (holders > maxGauge) maxGauge = holders;
        const v = Number((await redis.get('counter')) || 0);
        // the "sleep" between read and write: most often a yield, sometimes a timer
        if (i % 10 === 0) await sleep(1);
        else await yieldNow();
        await redis.set('counter', String(v + 1));
        await redis.rpush('counter-fences', String(fence));
        await redis.decr('holders');
      },
      { ttlSec: 10, waitMs: 120_000, retryDelayMs: 5 },
    );
    if (out.lost) lost++;
  }
  redis.disconnect();
  await cache.shutdown();
  return { maxGauge, lost };
}

async function fence(url, n, tag) {
  const cache = createCache({ url, nodeId: `fence${tag}` });
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  const lock = cache.distributedLock;
  let grants = 0;
  for (let i = 0; i < n; i++) {
    const l = await lock.acquire('fenced', 'one', { ttlSec: 10, retries: 100_000, retryDelayMs: 2 });
    if (!l.acquired) throw new Error(`not acquired: ${JSON.stringify(l)}`);
    grants++;
    await redis.rpush('fences', String(l.fence));
    if (!(await lock.release('fenced', 'one', l.owner))) throw new Error('release refused');
  }
  redis.disconnect();
  await cache.shutdown();
  return { grants };
}

async function exitAfterWithLock(url, ttlSec) {
  const cache = createCache({ url, nodeId: 'exiter' });
  const { result } = await cache.distributedLock.withLock('exit', 'job', async () => 'done', { ttlSec });
  await cache.shutdown();
  return { result };
}

const [mode, url, a, b] = process.argv.slice(2);
const run =
  mode === 'counter'
    ? counter(url, Number(a), b)
    : mode === 'fence'
      ? fence(url, Number(a), b)
      : mode === 'exit'
        ? exitAfterWithLock(url, Number(a))
        : Promise.reject(new Error(`unknown mode ${mode}`));
run.then(
  (r) => process.stdout.write(JSON.stringify(r)),
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exitCode = 1;
  },
);
