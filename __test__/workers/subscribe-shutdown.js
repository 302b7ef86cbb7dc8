'use strict';
// Subscribes, receives one message, then calls shutdown() (argv[3]: 'module' for the module's
// shutdown(), 'pubsub' for pubsub.shutdown()) and does nothing else: the process must exit by
// itself. Prints 'shutdown' when it called shutdown.

const cache = require('../..');

const [url, which] = process.argv.slice(2);
cache.configure({ url });
(async () => {
  const ok = await cache.pubsub.subscribe();
  if (!ok) throw new Error('not subscribed');
  const got = new Promise((resolve) => cache.pubsub.onMessage('cache:invalidate', resolve));
  // A subscriber never keeps Node alive by itself (the threadsafe function is weak): the
  // app's server would; this timer stands in for it while we wait for the message.
  const server = setInterval(() => {}, 1000);
  await cache.pubsub.publishCacheInvalidation({ keys: ['k'] });
  await got;
  clearInterval(server);
  // A warm near cache too, so every background part is running.
  await cache.permissionCache.hasModulePermission(1, 'X');
  if (which === 'pubsub') await cache.pubsub.shutdown();
  else await cache.shutdown();
  console.log('shutdown');
})();
