'use strict';
// A rolling deploy from the ERP's old JS `cache/` layer (ioredis; its shape is
// benchmark/baseline/, the same API written the old way) to this package: for a while old and
// new nodes run side by side on one Redis, with no keyPrefix on either (the old layer had
// none). Pins what docs/migration.md promises:
// - invalidation messages cross both ways on the same channels (an old node's role change
//   drops a new node's near cache; a new node's message reaches an old node's handler);
// - a session either side wrote is read by the other (same key, same JSON);
// - a user whose old-layer session index is a SET (the new one is a sorted set) still gets
//   "log out everywhere" from a new node, and new logins for that user are cached.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache, hashToken } = require('..');
const { createBaseline } = require('../benchmark/baseline');
const { startRedis } = require('./helpers/redis');
const { waitFor } = require('./helpers/faults');

// true once `fn()` holds (checked every 20 ms for at most 3 s)
const until = async (fn) => (await waitFor(fn, { timeoutMs: 3000 })) >= 0;

describe('rolling deploy: an old-layer node and a new node on one Redis', () => {
  let server, oldNode, newNode, loads;
  before(async () => {
    server = await startRedis();
    loads = 0;
    oldNode = createBaseline(server.url, {});
    newNode = createCache({
      url: server.url,
      loaders: {
        userPermissions: async (userId) => {
          loads++;
          return { role: 'CLERK', modules: ['INVENTORY'], pages: {} };
        },
      },
    });
    await newNode.pubsub.subscribe();
    await oldNode.pubsub.subscribe();
    // The old layer's command connection refuses commands until it is ready (no offline
    // queue): on a loaded machine the first test could otherwise start before it connects.
    if (oldNode.client.status !== 'ready') await new Promise((resolve) => oldNode.client.once('ready', resolve));
  });
  after(async () => {
    await newNode.shutdown();
    oldNode.close();
    await server.stop();
  });

  it('an old node\'s permission change reaches the new node\'s near cache; a new node\'s message reaches the old node\'s handler', async () => {
    const heard = [];
    newNode.pubsub.onMessage('permissions:invalidate', (m) => heard.push(m));
    assert.equal(await newNode.permissionCache.hasModulePermission(41, 'INVENTORY'), true);
    assert.equal(await newNode.permissionCache.hasModulePermission(41, 'INVENTORY'), true); // near cache
    assert.equal(loads, 1);
    // the old layer revokes INVENTORY: it writes the user's snapshot under the same key and
    // publishes its { type, userId } (with its origin and ts)
    await oldNode.client.set('perm:user:41', JSON.stringify({ role: 'CLERK', modules: [], pages: {} }), 'EX', 300);
    assert.ok((await oldNode.pubsub.publish('permissions:invalidate', { type: 'user', userId: 41 })) >= 1);
    assert.ok(await until(() => heard.length > 0), 'the new node heard the old node');
    assert.equal(heard[0].type, 'user');
    assert.equal(heard[0].userId, 41);
    // the near cache (5 s) no longer answers the old grant: the old node's snapshot is read
    assert.equal(await newNode.permissionCache.hasModulePermission(41, 'INVENTORY'), false);

    const oldHeard = [];
    oldNode.pubsub.onMessage('sessions:invalidate', (m) => oldHeard.push(m));
    assert.ok((await newNode.pubsub.publishSessionInvalidation({ type: 'user', userId: 42 })) >= 1);
    assert.ok(await until(() => oldHeard.length > 0), 'the old node heard the new node');
    assert.equal(oldHeard[0].type, 'user');
    assert.equal(oldHeard[0].userId, 42);
  });

  it('a session written by either side is read by the other (same key, same JSON)', async () => {
    const a = hashToken('migration-token-a');
    const b = hashToken('migration-token-b');
    const exp = new Date(Date.now() + 600_000).toISOString();
    await oldNode.sessionCache.setSession(a, { user_id: 51, expires_at: exp, role: 'CLERK' });
    assert.deepEqual(await newNode.sessionCache.getSession(a), { user_id: 51, expires_at: exp, role: 'CLERK' });
    assert.equal(await newNode.sessionCache.setSession(b, { user_id: 52, expires_at: exp }), true);
    assert.deepEqual(await oldNode.sessionCache.getSession(b), { user_id: 52, expires_at: exp });
  });

  it('"log out everywhere" from a new node reaches sessions an old node indexed (a SET index), and new logins of that user are cached', async () => {
    const exp = new Date(Date.now() + 600_000).toISOString();
    const olds = ['m-old-1', 'm-old-2'].map(hashToken);
    for (const h of olds) await oldNode.sessionCache.setSession(h, { user_id: 61, expires_at: exp });
    assert.equal(await server.client().type('session:user:61'), 'set');
    // a login on a new node for the same user
    const fresh = hashToken('m-new-1');
    assert.equal(await newNode.sessionCache.setSession(fresh, { user_id: 61, expires_at: exp }), true, 'a new login of a user indexed by the old layer is cached');
    assert.deepEqual((await newNode.sessionCache.getUserSessions(61)).sort(), [...olds, fresh].sort());
    assert.equal(await newNode.sessionCache.invalidateUserSessions(61), 3);
    for (const h of [...olds, fresh]) {
      assert.equal(await newNode.sessionCache.getSession(h), null);
      assert.equal(await oldNode.sessionCache.getSession(h), null);
    }
  });
});
