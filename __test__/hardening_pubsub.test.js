'use strict';
// Hardening of pub/sub (issue 14, items 9 and 14), on a real redis-server and on memory://.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const native = require('../binding.js');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep } = require('./helpers/redis');

const uid = () => `u${crypto.randomBytes(6).toString('hex')}`;

async function rejectsWith(promise, Class, code, what) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Class, `${what}: expected ${Class.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code, what);
    return true;
  });
}

// Seeds raw keys (as stored) into either back end.
async function seed(backend, keys) {
  if (backend.name === 'memory') {
    const name = backend.url.slice('memory://'.length);
    for (const k of keys) native.memoryStoreSet(name, k, 'v', 600_000);
    return;
  }
  const c = backend.server.client();
  const p = c.pipeline();
  for (const k of keys) p.set(k, 'v', 'EX', 600);
  await p.exec();
}

// One key of every family the library writes, and of the app's own families of the guide.
const FAMILY_KEYS = [
  'session:abc123', 'session:user:5', 'perm:user:5', 'perm:role:7', 'rate:1.2.3.4:_api_auth_login',
  'rate-ip:1.2.3.4', 'lock:task:99', 'lock-fence:{lock:task:99}',
  'dash:stats:2024-01', 'dash:stats:2024-02', 'dash:users', 'report:sales:123', 'report:sales:124', 'report:stock:1',
];

for (const [name, make] of BACKENDS) {
  describe(`pubsub hardening on ${name}`, () => {
    let backend;
    let cache;

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url, nodeId: 'node-h' });
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    // Hardening 9: `?*`, `*?`, `[^]*`, `*:*` each deleted everything under the prefix; a pattern
    // needs a literal first segment, and may not cover a whole family of the library's keys.
    it('invalidatePattern refuses patterns without a literal first segment or covering a whole key family; nothing is deleted', async () => {
      await backend.flush();
      await seed(backend, FAMILY_KEYS);
      const before = (await backend.keys()).sort();
      assert.equal(before.length, FAMILY_KEYS.length);
      const refused = [
        // the examples
        '?*', '*?', '[^]*', '*:*',
        // no literal first segment (empty, glob, or an escape in it)
        ':*', 'da*:*', 'd?sh:*', '[d]ash:*', '\\*:*', 'dash\\:*',
        // every key of one of the library's families
        'session:*', 'session:user:*', 'session:u*', 'perm:*', 'perm:user:*', 'perm:role:*', 'perm:*:5',
        'rate:*', 'rate-ip:*',
        // locks and fences are no cache entries
        'lock:*', 'lock:task:*', 'lock:task:99', 'lock-fence:*',
      ];
      let refusedCount = 0;
      for (const p of refused) {
        await rejectsWith(cache.pubsub.invalidatePattern(p), TypeError, 'ERR_INVALID_ARG', JSON.stringify(p));
        refusedCount++;
      }
      const after = (await backend.keys()).sort();
      assert.deepEqual(after, before, 'a refused pattern deletes nothing');
      t_diag(`${name}: ${refusedCount} patterns refused, keys before ${before.length}, after ${after.length}`);
    });

    it("the guide's patterns keep working: dash:*, dash:stats:*, report:sales:* delete exactly their keys", async () => {
      await backend.flush();
      await seed(backend, FAMILY_KEYS);
      assert.equal(await cache.pubsub.invalidatePattern('report:sales:*'), 2);
      assert.equal(await cache.pubsub.invalidatePattern('dash:stats:*'), 2);
      assert.equal(await cache.pubsub.invalidatePattern('dash:*'), 1);
      // a pattern that pins a part of a library family is fine
      assert.equal(await cache.pubsub.invalidatePattern('perm:user:5*'), 1);
      const left = (await backend.keys()).sort();
      const expected = FAMILY_KEYS.filter((k) => !/^(report:sales:|dash:|perm:user:5)/.test(k)).sort();
      assert.deepEqual(left, expected);
      t_diag(`${name}: ${FAMILY_KEYS.length - left.length} keys deleted by the guide's patterns, ${left.length} untouched`);
    });
  });
}

// Prints a figure into the test output.
function t_diag(msg) {
  console.log(msg);
}

