'use strict';
// A second app node for the two-process test: its own createCache on the given URL, a
// loader answering from a "database" the parent controls over IPC, and a subscription.
// Commands (IPC): { cmd: 'db', userId, snapshot } | { cmd: 'check', userId, module } | { cmd: 'exit' }.

const { createCache } = require('../..');

const url = process.argv[2];
const db = new Map();
let loaderCalls = 0;
const cache = createCache({
  url,
  nodeId: 'worker-b',
  loaders: {
    userPermissions: async (userId) => {
      loaderCalls++;
      const s = db.get(String(userId));
      return s ? JSON.parse(JSON.stringify(s)) : null;
    },
  },
});

cache.pubsub.onMessage('permissions:invalidate', (data) => {
  process.send({ event: 'message', data, at: Date.now() });
});

process.on('message', async (m) => {
  try {
    if (m.cmd === 'db') {
      db.set(String(m.userId), m.snapshot);
      process.send({ event: 'ok' });
    } else if (m.cmd === 'check') {
      const allowed = await cache.permissionCache.hasModulePermission(m.userId, m.module);
      process.send({ event: 'checked', allowed, loaderCalls, near: cache.permissionCache.nearCacheStats() });
    } else if (m.cmd === 'exit') {
      await cache.shutdown();
      process.disconnect();
    }
  } catch (err) {
    process.send({ event: 'error', message: err.message });
  }
});

cache.pubsub.subscribe().then((ok) => process.send({ event: 'ready', subscribed: ok }));
