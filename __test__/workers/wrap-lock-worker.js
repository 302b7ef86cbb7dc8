'use strict';
// A separate Node process (another app node) calling the general cache's wrap with `lock` on a
// shared Redis, for the cross-node single-flight tests. Spoken to over IPC:
//   node wrap-lock-worker.js <url> <key> <loaderMs> <loaderTimeoutMs>
//   → { event: 'ready' }; on { go: true } it wraps `key` (its loader, which takes loaderMs,
//   sends { event: 'loading' }), then sends { event: 'done', value, loaderCalls }.
//   loaderMs -1: the loader never answers (the parent kills this process mid-load).

const { createCache } = require('../..');

const [url, key, loaderMs, loaderTimeoutMs] = process.argv.slice(2);
const cache = createCache({ url, nodeId: `wrap-worker-${process.pid}` });
let loaderCalls = 0;

const loader = () => {
  loaderCalls++;
  process.send({ event: 'loading' });
  if (Number(loaderMs) < 0) return new Promise(() => {});
  return new Promise((resolve) => setTimeout(resolve, Number(loaderMs), `from-worker-${process.pid}`));
};

process.on('message', async (m) => {
  if (!m || !m.go) return;
  const value = await cache.wrap(key, loader, { ttlSec: 60, lock: true, loaderTimeoutMs: Number(loaderTimeoutMs) });
  process.send({ event: 'done', value, loaderCalls });
  await cache.shutdown();
  process.disconnect();
});
process.send({ event: 'ready' });
