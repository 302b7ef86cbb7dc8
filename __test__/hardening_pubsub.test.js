'use strict';
// Hardening of pub/sub (issue 14, items 9 and 14), on a real redis-server and on memory://.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const hooks = require('./helpers/hooks');
const { createCache } = require('..');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
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
    for (const k of keys) hooks.memoryStoreSet(name, k, 'v', 600_000);
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
  'rate-ip:1.2.3.4', 'lock:task:99', 'lock-fence:{lock:task:99}', 'sem:{jobs}', 'sem:{jobs}:fence',
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
        // locks, semaphores and their fences are no cache entries
        'lock:*', 'lock:task:*', 'lock:task:99', 'lock-fence:*', 'sem:*', 'sem:{jobs}*',
      ];
      let refusedCount = 0;
      for (const p of refused) {
        await rejectsWith(cache.pubsub.invalidatePattern(p), TypeError, 'ERR_INVALID_ARG', JSON.stringify(p));
        refusedCount++;
      }
      const after = (await backend.keys()).sort();
      assert.deepEqual(after, before, 'a refused pattern deletes nothing');
      diag(`Hardening 9: ${name}: ${refusedCount} patterns refused, keys before ${before.length}, after ${after.length}`);
    });

    it("the guide's patterns keep working: dash:*, dash:stats:*, report:sales:* delete exactly their keys", async () => {
      await backend.flush();
      await seed(backend, FAMILY_KEYS);
      assert.equal(await cache.pubsub.invalidatePattern('report:sales:*'), 2);
      assert.equal(await cache.pubsub.invalidatePattern('dash:stats:*'), 2);
      assert.equal(await cache.pubsub.invalidatePattern('dash:*'), 1);
      // a pattern that pins a part of a library family is fine
      assert.equal(await cache.pubsub.invalidatePattern('perm:user:5*'), 1);
      // each deleted key leaves its bumped revision key (rev:{key}, until its TTL), which
      // refuses the fills of loads that began before the delete
      const all = await backend.keys();
      const left = all.filter((k) => !k.startsWith('rev:{')).sort();
      const expected = FAMILY_KEYS.filter((k) => !/^(report:sales:|dash:|perm:user:5)/.test(k)).sort();
      assert.deepEqual(left, expected);
      const deleted = FAMILY_KEYS.filter((k) => /^(report:sales:|dash:|perm:user:5)/.test(k));
      assert.deepEqual(all.filter((k) => k.startsWith('rev:{')).sort(), deleted.map((k) => `rev:{${k}}`).sort());
      diag(`${name}: ${FAMILY_KEYS.length - left.length} keys deleted by the guide's patterns, ${left.length} untouched`);
    });
  });
}

const OLD = 'old-secret-0123456789abcdef';
const NEW = 'new-secret-fedcba9876543210';
const CLERK = { role: 'CLERK', modules: ['INVENTORY'], pages: { items: ['view'] } };

// Resolves with the first value `poll()` returns that is not undefined, within `ms`.
async function within(ms, poll, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await poll();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
}

// PUBLISH as any client of the shared back end could: raw bytes, no signature, no bound.
function rawPublisher(backend) {
  if (backend.name === 'memory') {
    const name = backend.url.slice('memory://'.length);
    return async (channel, payload) => hooks.memoryStorePublish(name, channel, payload);
  }
  const c = backend.server.client();
  return (channel, payload) => c.publish(channel, payload);
}

// Everything a node hears on the three channels, by its handlers.
function listen(cache) {
  const got = [];
  const offs = ['permissions:invalidate', 'sessions:invalidate', 'cache:invalidate'].map((ch) => cache.pubsub.onMessage(ch, (m) => got.push({ ch, m })));
  got.off = () => offs.forEach((f) => f());
  return got;
}

const rejected = (cache) => cache.stats().pubsub.rejected;

// The wire format of a signed message (docs/pubsub.md): the published JSON object with a last field
// "sig" = hex HMAC-SHA256(secret, "bisman-cache pubsub v1\n" + channel + "\n" + object), where
// channel is the channel as published (keyPrefix included) and object the exact bytes.
function signed(secret, channel, object) {
  const sig = crypto.createHmac('sha256', secret).update(`bisman-cache pubsub v1\n${channel}\n${object}`).digest('hex');
  return `${object.slice(0, -1)},"sig":"${sig}"}`;
}

for (const [name, make] of BACKENDS) {
  describe(`signed and bounded pub/sub messages on ${name}`, () => {
    let backend;
    let publishRaw;
    const opened = [];
    const db = { users: new Map() };
    const loaders = { userPermissions: async (u) => db.users.get(String(u)) || null };
    const open = async (options) => {
      const c = createCache({ url: backend.url, loaders, ...options });
      opened.push(c);
      assert.equal(await c.pubsub.subscribe(), true);
      return c;
    };

    before(async () => {
      backend = await make();
      publishRaw = rawPublisher(backend);
    });
    after(async () => {
      for (const c of opened) await c.shutdown();
      await backend.close();
    });

    // Hardening 14: anyone who can PUBLISH could empty every node's near cache or feed the app
    // handlers anything. With pubsubSecret, unsigned and badly signed messages are dropped
    // (neither the near cache nor a handler sees them) and counted; signed ones are applied.
    it('pubsubSecret: a forged invalidation is dropped and counted, the near cache still serves; a signed one is applied', async () => {
      const a = await open({ nodeId: 'sign-a', pubsubSecret: OLD });
      const b = await open({ nodeId: 'sign-b', pubsubSecret: [OLD] });
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      const size = b.permissionCache.nearCacheStats().size;
      assert.ok(size >= 1, 'B holds the snapshot near');
      const heard = listen(b);
      const forged = [
        ['permissions:invalidate', JSON.stringify({ type: 'role', roleId: 1 })],
        ['permissions:invalidate', JSON.stringify({ type: 'user', userId: u })],
        ['cache:invalidate', JSON.stringify({ pattern: '*' })],
        ['sessions:invalidate', 'not even json'],
        // a signature field of the right shape, made without the secret
        ['permissions:invalidate', `{"type":"user","userId":"${u}","sig":"${'0'.repeat(64)}"}`],
        ['cache:invalidate', `{"pattern":"*","sig":"${crypto.createHmac('sha256', 'guess-guess-guess').update('{"pattern":"*"}').digest('hex')}"}`],
      ];
      for (const [ch, payload] of forged) await publishRaw(ch, payload);
      await within(2000, () => (rejected(b).unsigned + rejected(b).badSignature === forged.length ? true : undefined), 'the forged messages counted');
      const r = rejected(b);
      assert.equal(r.unsigned, 4);
      assert.equal(r.badSignature, 2);
      assert.equal(heard.length, 0, 'no handler saw a forged message');
      assert.equal(b.permissionCache.nearCacheStats().size, size, 'the near cache kept its entries');
      const hits = b.permissionCache.nearCacheStats().hits;
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      assert.equal(b.permissionCache.nearCacheStats().hits, hits + 1, 'and still answers from them');
      // a signed message from the other node is applied
      db.users.set(u, { modules: [] });
      assert.equal(await a.pubsub.invalidateUserPermissions(u), true);
      await within(2000, () => (heard.some((h) => h.m.userId === u) ? true : undefined), 'the signed message at B');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false);
      const data = heard.find((h) => h.m.userId === u).m;
      assert.deepEqual(Object.keys(data).sort(), ['origin', 'sender', 'seq', 'ts', 'type', 'userId'], 'the handler gets the message as published (numbered, issue 15), without the signature');
      assert.deepEqual(rejected(b), { oversize: 0, unsigned: 4, badSignature: 2 });
      heard.off();
      diag(`${name}: forged messages dropped at B: ${JSON.stringify(rejected(b))}; near entries kept ${size}; signed message applied`);
    });

    it('the signature (documented format) covers the exact bytes and the channel: replayed on another channel or altered, a message is dropped', async () => {
      const b = await open({ nodeId: 'bind-b', pubsubSecret: OLD, keyPrefix: 'bind:' });
      const heard = listen(b);
      const object = JSON.stringify({ type: 'user', userId: 'x', origin: 'elsewhere', ts: Date.now() });
      const wire = signed(OLD, 'bind:permissions:invalidate', object);
      if (name === 'redis') {
        // what a node puts on the wire is exactly that format
        const a = await open({ nodeId: 'bind-a', pubsubSecret: OLD, keyPrefix: 'bind:' });
        const sub = backend.server.client();
        await sub.subscribe('bind:permissions:invalidate');
        const got = new Promise((resolve) => sub.on('message', (ch, m) => resolve(m)));
        await a.pubsub.publishPermissionInvalidation({ type: 'user', userId: 'x' });
        const seen = await got;
        const sent = seen.replace(/,"sig":"[0-9a-f]{64}"}$/, '}');
        assert.equal(seen, signed(OLD, 'bind:permissions:invalidate', sent));
        await within(2000, () => (heard.length === 1 ? true : undefined), "A's message at B");
        heard.length = 0;
      }
      const before = rejected(b).badSignature;
      await publishRaw('bind:cache:invalidate', wire); // another channel
      await publishRaw('other:permissions:invalidate', wire); // another prefix: never heard at all
      await publishRaw('bind:permissions:invalidate', wire.replace('"userId":"x"', '"userId":"y"')); // altered
      await publishRaw('bind:permissions:invalidate', wire); // as signed: applied
      await within(2000, () => (heard.length === 1 ? true : undefined), 'the genuine one');
      assert.equal(rejected(b).badSignature, before + 2);
      assert.deepEqual(heard[0].m, JSON.parse(object));
      heard.off();
      diag(`${name}: replayed-on-another-channel and altered signed messages dropped: ${rejected(b).badSignature - before}; the genuine one applied`);
    });

    // Hardening 14, rotation: the first secret signs, any verifies. Rotating OLD -> NEW: every
    // node to [OLD, NEW] (still signing OLD), then every node to [NEW, OLD], then to [NEW].
    it('rotation with two secrets: [NEW, OLD] and [OLD, NEW] nodes hear each other; a node with one secret hears only that one', async () => {
      const prefix = `rot${uid()}:`;
      const nodes = {
        'A[NEW,OLD]': await open({ nodeId: 'rot-a', keyPrefix: prefix, pubsubSecret: [NEW, OLD] }),
        'B[OLD,NEW]': await open({ nodeId: 'rot-b', keyPrefix: prefix, pubsubSecret: [OLD, NEW] }),
        'C[OLD]': await open({ nodeId: 'rot-c', keyPrefix: prefix, pubsubSecret: OLD }),
        'D[NEW]': await open({ nodeId: 'rot-d', keyPrefix: prefix, pubsubSecret: [NEW] }),
        'E(none)': await open({ nodeId: 'rot-e', keyPrefix: prefix }),
      };
      const names = Object.keys(nodes);
      const heard = Object.fromEntries(names.map((n) => [n, listen(nodes[n])]));
      const matrix = {};
      for (const from of ['A[NEW,OLD]', 'B[OLD,NEW]', 'C[OLD]', 'D[NEW]']) {
        const nonce = uid();
        const bad = Object.fromEntries(names.map((n) => [n, rejected(nodes[n]).badSignature]));
        await nodes[from].pubsub.publishCacheInvalidation({ keys: [`k:${nonce}`], nonce });
        // every receiver either hears it or counts it as badly signed
        await within(2000, () => (names.every((n) => n === from || heard[n].some((h) => h.m.nonce === nonce) || rejected(nodes[n]).badSignature > bad[n]) ? true : undefined), `the message of ${from}`);
        matrix[from] = names.filter((n) => n !== from && heard[n].some((h) => h.m.nonce === nonce)).join(' ');
      }
      assert.equal(matrix['A[NEW,OLD]'], 'B[OLD,NEW] D[NEW] E(none)');
      assert.equal(matrix['B[OLD,NEW]'], 'A[NEW,OLD] C[OLD] E(none)');
      assert.equal(matrix['C[OLD]'], 'A[NEW,OLD] B[OLD,NEW] E(none)');
      assert.equal(matrix['D[NEW]'], 'A[NEW,OLD] B[OLD,NEW] E(none)');
      assert.equal(rejected(nodes['E(none)']).badSignature, 0, 'a node without a secret accepts every message');
      for (const n of names) heard[n].off();
      diag(`${name}: who hears whom: ${JSON.stringify(matrix)}`);
    });

    it('without pubsubSecret, unsigned messages are accepted as before', async () => {
      const e = await open({ nodeId: 'plain-e', keyPrefix: 'plain:' });
      const heard = listen(e);
      await publishRaw('plain:cache:invalidate', JSON.stringify({ keys: ['k1'], raw: true }));
      await within(2000, () => (heard.length === 1 ? true : undefined), 'the unsigned message');
      assert.deepEqual(heard[0].m, { keys: ['k1'], raw: true });
      assert.deepEqual(rejected(e), { oversize: 0, unsigned: 0, badSignature: 0 });
      heard.off();
    });

    // Hardening 14: a 64 MiB message was accepted. maxMessageBytes bounds what is published
    // (RangeError, nothing sent) and what is received (dropped before the near cache and the
    // handlers, counted).
    it('maxMessageBytes: an oversize publish is refused with a RangeError and sends nothing; an oversize message received is dropped and counted', async () => {
      const a = await open({ nodeId: 'size-a', keyPrefix: 'size:', maxMessageBytes: 4096 });
      const b = await open({ nodeId: 'size-b', keyPrefix: 'size:', maxMessageBytes: 4096, pubsubSecret: OLD });
      const c = await open({ nodeId: 'size-c', keyPrefix: 'size:', maxMessageBytes: 4096, pubsubSecret: OLD });
      const heardB = listen(b);
      const heardA = listen(a);
      await rejectsWith(a.pubsub.publishCacheInvalidation({ big: 'x'.repeat(5000) }), RangeError, 'ERR_VALUE_TOO_LARGE', 'publish over the bound');
      // signed, the bound counts the signature too
      await rejectsWith(b.pubsub.publishCacheInvalidation({ big: 'x'.repeat(4000) }), RangeError, 'ERR_VALUE_TOO_LARGE', 'signed publish over the bound');
      await backend.flush();
      await seed(backend, ['size:k1', 'size:k2']);
      const tooMany = Array.from({ length: 200 }, (_, i) => `k${i}-${'y'.repeat(20)}`);
      await rejectsWith(b.pubsub.invalidateKeys(['k1', ...tooMany]), RangeError, 'ERR_VALUE_TOO_LARGE', 'invalidateKeys over the bound');
      assert.equal((await backend.keys()).filter((k) => k.startsWith('size:')).length, 2, 'a refused invalidateKeys deletes nothing');
      // received: raw messages over the bound (the second one 1 MiB)
      await publishRaw('size:cache:invalidate', JSON.stringify({ keys: ['k1'], pad: 'z'.repeat(5000) }));
      await publishRaw('size:cache:invalidate', JSON.stringify({ keys: ['k1'], pad: 'z'.repeat(1 << 20) }));
      await within(3000, () => (rejected(a).oversize === 2 && rejected(b).oversize === 2 ? true : undefined), 'the oversize messages counted');
      // in order behind them, a message within the bound arrives: nothing of the big ones did
      await c.pubsub.publishCacheInvalidation({ keys: ['k2'], last: true });
      await within(2000, () => (heardA.some((h) => h.m.last) && heardB.some((h) => h.m.last) ? true : undefined), 'the small message');
      assert.equal(heardA.length, 1, JSON.stringify(heardA).slice(0, 500));
      assert.equal(heardB.length, 1);
      assert.equal(b.pubsub.status().maxMessageBytes, 4096);
      heardA.off();
      heardB.off();
      diag(`${name}: oversize messages dropped: A ${JSON.stringify(rejected(a))}, B ${JSON.stringify(rejected(b))}`);
    });

    it('a 64 MiB message never reaches the near cache or a handler (default bound 64 KiB); what it costs the receiver', async () => {
      const prefix = 'huge:';
      const b = await open({ nodeId: 'huge-b', keyPrefix: prefix });
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) await b.permissionCache.hasModulePermission(u, 'INVENTORY');
      const heard = listen(b);
      const huge = JSON.stringify({ type: 'user', userId: u, pad: 'z'.repeat(64 * 2 ** 20) });
      const file = path.join(os.tmpdir(), `bisman-huge-${process.pid}.json`);
      if (name === 'redis') fs.writeFileSync(file, huge);
      const mib = (n) => (n / 2 ** 20).toFixed(0);
      // One huge PUBLISH; resolves how the receiver handled it and the most RSS it grew by.
      const sendHuge = async () => {
        const st0 = b.pubsub.status();
        const rss0 = process.memoryUsage().rss;
        let peak = rss0;
        const t0 = Date.now();
        if (name === 'memory') {
          await publishRaw(`${prefix}permissions:invalidate`, huge);
        } else {
          // from another process (redis-cli), so this process's memory is the receiver's alone
          const port = String(backend.server.port);
          const r = spawnSync('sh', ['-c', `redis-cli -p ${port} -x PUBLISH ${prefix}permissions:invalidate < ${file}`], { encoding: 'utf8', timeout: 60000 });
          assert.equal(r.status, 0, r.stderr);
        }
        // dropped as oversize, or (Redis) the subscriber was cut off by the server's
        // client-output-buffer-limit for pub/sub and resubscribed (its near cache emptied)
        const how = await within(30000, () => {
          peak = Math.max(peak, process.memoryUsage().rss);
          const st = b.pubsub.status();
          if (st.rejected.oversize > st0.rejected.oversize) return 'dropped as oversize';
          if (st.resubscribes > st0.resubscribes && st.connected) return 'disconnected by the server, resubscribed';
          return undefined;
        }, 'the huge message handled');
        return `${how} after ${Date.now() - t0} ms, receiver RSS grew by up to ${mib(peak - rss0)} MiB`;
      };
      try {
        const figures = [`default server limits: ${await sendHuge()}`];
        if (name === 'redis') {
          // with the server's pub/sub output buffer limit lifted, the whole message reaches us
          await backend.server.client().config('SET', 'client-output-buffer-limit', 'pubsub 0 0 0');
          figures.push(`client-output-buffer-limit pubsub 0 0 0: ${await sendHuge()}`);
          await backend.server.client().config('SET', 'client-output-buffer-limit', 'pubsub 33554432 8388608 60');
        }
        await sleep(100);
        assert.equal(heard.length, 0, 'no handler saw it');
        const u2 = uid();
        db.users.set(u2, CLERK);
        assert.equal(await b.permissionCache.hasModulePermission(u2, 'INVENTORY'), true, 'the node keeps working');
        diag(`${name}: 64 MiB message: ${figures.join('; ')}`);
      } finally {
        heard.off();
        fs.rmSync(file, { force: true });
      }
    });
  });
}

it('bad maxMessageBytes and pubsubSecret options are refused with a TypeError or RangeError carrying a code; the secret is never shown', () => {
  const cases = [
    [{ maxMessageBytes: '65536' }, TypeError, 'ERR_INVALID_ARG'],
    [{ maxMessageBytes: 1023 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxMessageBytes: 16 * 2 ** 20 + 1 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxMessageBytes: 2048.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ maxMessageBytes: NaN }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pubsubSecret: 42 }, TypeError, 'ERR_INVALID_ARG'],
    [{ pubsubSecret: [OLD, 7] }, TypeError, 'ERR_INVALID_ARG'],
    [{ pubsubSecret: { secret: OLD } }, TypeError, 'ERR_INVALID_ARG'],
    [{ pubsubSecret: [] }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pubsubSecret: [OLD, NEW, 'third-secret-0123456789'] }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pubsubSecret: 'short-secret' }, RangeError, 'ERR_OUT_OF_RANGE'],
    [{ pubsubSecret: [OLD, ''] }, RangeError, 'ERR_OUT_OF_RANGE'],
  ];
  for (const [options, Class, code] of cases) {
    assert.throws(() => createCache({ url: 'memory://opts', ...options }), (e) => {
      assert.ok(e instanceof Class, `${JSON.stringify(options)}: ${e && e.constructor.name} ${e && e.message}`);
      assert.equal(e.code, code);
      assert.ok(!e.message.includes('short-secret') && !e.message.includes(OLD));
      return true;
    });
  }
  const ok = createCache({ url: 'memory://opts', maxMessageBytes: 1024, pubsubSecret: [NEW, OLD] });
  assert.equal(ok.pubsub.status().maxMessageBytes, 1024);
  assert.equal(ok.pubsub.status().signed, true);
  return ok.shutdown();
});

// Prints a figure into the test output.
function diag(msg) {
  console.log(msg);
}
