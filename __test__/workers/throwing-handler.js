'use strict';
// A handler that throws (and one that rejects) must not kill the process; later messages
// still arrive. With no 'error' listener the failure is a log line on stderr.

const { createCache } = require('../..');

const url = process.argv[2];
(async () => {
  const cache = createCache({ url });
  await cache.pubsub.subscribe();
  let seen = 0;
  cache.pubsub.onMessage('sessions:invalidate', () => {
    throw new Error('handler boom');
  });
  cache.pubsub.onMessage('sessions:invalidate', async () => {
    throw new Error('async handler boom');
  });
  cache.pubsub.onMessage('sessions:invalidate', () => {
    seen++;
  });
  for (let i = 0; i < 3; i++) await cache.pubsub.publishSessionInvalidation({ type: 'user', userId: i });
  const deadline = Date.now() + 3000;
  while (seen < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  console.log(`seen ${seen}`);
  await cache.shutdown();
})();
