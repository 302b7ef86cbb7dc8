'use strict';
// Issue 15 item 3 (revocation is final: gap detection). Every message this library publishes
// carries its sender's id and a number per (sender, channel); a subscriber that sees a gap, a
// restart of a sender, or its own reconnect drops its near caches (Rust and JS), and counts it.
// On a real redis-server and on memory:// (and Cluster / Sentinel with BISMAN_TOPOLOGY).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const Redis = require('ioredis');
const hooks = require('./helpers/hooks');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep } = require('./helpers/redis');

const uid = () => `u${crypto.randomBytes(6).toString('hex')}`;
const PREFIX = 'gapt:';
const CHANNELS = ['permissions:invalidate', 'sessions:invalidate', 'cache:invalidate'];
const SECRET = 'gap-secret-0123456789abcdef';
const CLERK = { role: 'CLERK', modules: ['INVENTORY'], pages: { items: ['view'] } };
const NOBODY = { role: 'CLERK', modules: [], pages: {} };

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

// Prints a figure into the test output.
function diag(msg) {
  console.log(msg);
}

// A plain client of the back end (an admin; for raw PUBLISH, SET, CLIENT KILL).
function rawClient(backend) {
  return backend.server ? backend.server.client() : backend.topology.client();
}

// PUBLISH raw bytes on a channel as published (prefix included), as any client could.
function rawPublisher(backend) {
  if (backend.name === 'memory') {
    const name = backend.url.slice('memory://'.length);
    return async (channel, payload) => hooks.memoryStorePublish(name, channel, payload);
  }
  const c = rawClient(backend);
  return (channel, payload) => c.publish(channel, payload);
}

// SET a key as stored (prefix included) behind every node's back.
function rawSetter(backend) {
  if (backend.name === 'memory') {
    const name = backend.url.slice('memory://'.length);
    return async (key, value) => hooks.memoryStoreSet(name, key, value, 600_000);
  }
  const c = rawClient(backend);
  return (key, value) => c.set(key, value, 'EX', 600);
}

// The signed wire format (docs/pubsub.md): the object with a last field "sig".
function signed(secret, channel, object) {
  const sig = crypto.createHmac('sha256', secret).update(`bisman-cache pubsub v1\n${channel}\n${object}`).digest('hex');
  return `${object.slice(0, -1)},"sig":"${sig}"}`;
}

// Everything a node hears on the three channels, by its handlers.
function listen(cache) {
  const got = [];
  const offs = CHANNELS.map((ch) => cache.pubsub.onMessage(ch, (m) => got.push({ ch, m })));
  got.off = () => offs.forEach((f) => f());
  return got;
}

const seqStats = (c) => {
  const s = c.pubsub.status();
  return { gaps: s.gaps, outOfOrder: s.outOfOrder, senderRestarts: s.senderRestarts, lateJoins: s.lateJoins, nearDrops: s.nearDrops };
};

for (const [name, make] of BACKENDS) {
  describe(`revocation gap detection on ${name}`, () => {
    let backend;
    let publishRaw;
    let setRaw;
    const opened = [];
    const db = { users: new Map() };
    const loaders = { userPermissions: async (u) => db.users.get(String(u)) || null };
    const open = async (options) => {
      const c = createCache({ url: backend.url, loaders, keyPrefix: PREFIX, nearCacheTtlMs: 60_000, ...options });
      opened.push(c);
      assert.equal(await c.pubsub.subscribe(), true);
      return c;
    };
    const shut = async (c) => {
      opened.splice(opened.indexOf(c), 1);
      await c.shutdown();
    };

    // B holds user u's snapshot in its near caches; then the snapshot changes in the store
    // behind every node's back (as if an invalidation message about it had been lost): B keeps
    // answering the old snapshot from near until something drops its near caches.
    async function staleNear(b) {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      assert.ok(b.permissionCache.nearCacheStats().size >= 1, 'B holds the snapshot near');
      db.users.set(u, NOBODY);
      await setRaw(`${PREFIX}perm:user:${u}`, JSON.stringify(NOBODY));
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true, 'B answers the stale snapshot from near');
      return u;
    }

    before(async () => {
      backend = await make();
      publishRaw = rawPublisher(backend);
      setRaw = rawSetter(backend);
    });
    after(async () => {
      for (const c of opened.splice(0)) await c.shutdown();
      await backend.close();
    });

    // Issue 15 item 3: messages carry the sender id and a number per (sender, channel), 1, 2,
    // 3 … on every publishing path (direct publish, invalidate* after a delete, permissions).
    it('every message carries its sender id and a sequence number per channel, from 1', async () => {
      const b = await open({ nodeId: `gb-${uid()}` });
      const aId = `ga-${uid()}`;
      const a = await open({ nodeId: aId });
      const heard = listen(b);
      const sender = a.pubsub.status().sender;
      assert.match(sender, /^[0-9a-f]{32}$/);
      assert.notEqual(sender, b.pubsub.status().sender);
      await a.pubsub.publishPermissionInvalidation({ type: 'user', userId: 'x1', seq: 999, sender: 'forged' });
      await a.pubsub.invalidateUserPermissions('x2');
      await a.pubsub.publishPermissionInvalidation({ type: 'role', roleId: 'r1' });
      await a.pubsub.invalidateRolePermissions('r2');
      await a.pubsub.publishSessionInvalidation({ type: 'user', userId: 'x3' });
      await a.pubsub.invalidateSession('t'.repeat(64));
      await a.pubsub.invalidateUserSessions('x4');
      await a.pubsub.publishCacheInvalidation({ keys: ['dash:1'] });
      await a.pubsub.invalidateKeys(['dash:2']);
      await a.pubsub.invalidatePattern('dash:3*');
      const fromA = () => heard.filter((h) => h.m.sender === sender);
      await within(3000, () => (fromA().length === 10 ? true : undefined), 'ten messages from A');
      const seqs = Object.fromEntries(CHANNELS.map((ch) => [ch, fromA().filter((h) => h.ch === ch).map((h) => h.m.seq)]));
      assert.deepEqual(seqs, { 'permissions:invalidate': [1, 2, 3, 4], 'sessions:invalidate': [1, 2, 3], 'cache:invalidate': [1, 2, 3] });
      assert.equal(fromA()[0].m.userId, 'x1', 'the caller cannot set sender or seq');
      for (const h of fromA()) assert.equal(h.m.origin, aId);
      assert.deepEqual(seqStats(b), { gaps: 0, outOfOrder: 0, senderRestarts: 0, lateJoins: 0, nearDrops: 0 });
      heard.off();
      diag(`${name}: sequence numbers heard at B from A: ${JSON.stringify(seqs)}`);
      await shut(a);
      await shut(b);
    });

    // Issue 15 item 3: a lost invalidation message left a revoked permission in B's near cache
    // until its TTL; a gap in A's numbering now drops B's near caches (Rust and JS), counted.
    it('a gap in a sender\'s numbering drops the near caches: the next check goes to the store', async () => {
      const a = await open({ nodeId: `ga-${uid()}` });
      const b = await open({ nodeId: `gb-${uid()}` });
      const heard = listen(b);
      const sender = a.pubsub.status().sender;
      await a.pubsub.publishCacheInvalidation({ keys: ['dash:x'] });
      const last = (await within(2000, () => heard.find((h) => h.m.sender === sender), 'A heard at B')).m.seq;
      const u = await staleNear(b);
      const before = b.stats().pubsub.gaps;
      const object = JSON.stringify({ keys: ['dash:unrelated'], origin: 'ga', ts: Date.now(), sender, seq: last + 2 });
      await publishRaw(`${PREFIX}cache:invalidate`, object);
      await within(2000, () => (b.stats().pubsub.gaps === before + 1 ? true : undefined), 'the gap counted');
      assert.equal(b.permissionCache.nearCacheStats().size, 0, 'the near cache was dropped');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'the next check reads the store');
      // the first message of an unknown sender that is not its first: a late join, a drop
      const u2 = await staleNear(b);
      const stranger = crypto.randomBytes(16).toString('hex');
      await publishRaw(`${PREFIX}permissions:invalidate`, JSON.stringify({ type: 'user', userId: 'nobody', origin: 'elsewhere', ts: Date.now(), sender: stranger, seq: 500 }));
      await within(2000, () => (b.pubsub.status().lateJoins === 1 ? true : undefined), 'the late join counted');
      assert.equal(await b.permissionCache.hasModulePermission(u2, 'INVENTORY'), false);
      const s = seqStats(b);
      assert.deepEqual(s, { gaps: 1, outOfOrder: 0, senderRestarts: 0, lateJoins: 1, nearDrops: 2 });
      assert.equal(b.stats().pubsub.gaps, 1, 'stats().pubsub.gaps');
      heard.off();
      diag(`${name}: a forged gap (seq ${last} then ${last + 2}) and a late join (seq 500): B ${JSON.stringify(s)}`);
      await shut(a);
      await shut(b);
    });

    // Issue 15 item 3: with pubsubSecret only verified messages count: a forged unsigned gap
    // costs nothing; a correctly signed message with a gap drops the near caches.
    it('with pubsubSecret a forged gap is dropped as unsigned and drops nothing; a signed gap drops', async () => {
      const a = await open({ nodeId: `ga-${uid()}`, pubsubSecret: SECRET });
      const b = await open({ nodeId: `gb-${uid()}`, pubsubSecret: SECRET });
      const heard = listen(b);
      const sender = a.pubsub.status().sender;
      await a.pubsub.publishCacheInvalidation({ keys: ['dash:x'] });
      const last = (await within(2000, () => heard.find((h) => h.m.sender === sender), 'A heard at B')).m.seq;
      const u = await staleNear(b);
      const channel = `${PREFIX}cache:invalidate`;
      const forged = JSON.stringify({ keys: ['dash:unrelated'], origin: 'ga', ts: Date.now(), sender, seq: last + 5 });
      await publishRaw(channel, forged);
      await within(2000, () => (b.stats().pubsub.rejected.unsigned === 1 ? true : undefined), 'the forged message refused');
      assert.equal(b.stats().pubsub.gaps, 0);
      assert.ok(b.permissionCache.nearCacheStats().size >= 1, 'the near cache kept its entries');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true, 'still answered from near');
      const good = JSON.stringify({ keys: ['dash:unrelated'], origin: 'ga', ts: Date.now(), sender, seq: last + 2 });
      await publishRaw(channel, signed(SECRET, channel, good));
      await within(2000, () => (b.stats().pubsub.gaps === 1 ? true : undefined), 'the signed gap counted');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'dropped: the next check reads the store');
      const s = seqStats(b);
      heard.off();
      diag(`${name}: pubsubSecret: forged gap → rejected ${JSON.stringify(b.stats().pubsub.rejected)}, no drop; signed gap → B ${JSON.stringify(s)}`);
      await shut(a);
      await shut(b);
    });

    // Issue 15 item 3: a sender that restarts (a new instance with the same nodeId) may have
    // lost what its old instance sent last: its receivers drop their near caches, counted.
    it('a restarted sender (same nodeId, new instance) drops the near caches at its first message', async () => {
      const nodeId = `ga-${uid()}`;
      const a = await open({ nodeId });
      const b = await open({ nodeId: `gb-${uid()}` });
      const heard = listen(b);
      const first = a.pubsub.status().sender;
      await a.pubsub.publishCacheInvalidation({ keys: ['dash:x'] });
      await within(2000, () => (heard.some((h) => h.m.sender === first) ? true : undefined), 'A heard at B');
      const u = await staleNear(b);
      await shut(a);
      const a2 = await open({ nodeId });
      const second = a2.pubsub.status().sender;
      assert.notEqual(second, first, 'a new instance is a new sender');
      await a2.pubsub.publishCacheInvalidation({ keys: ['dash:y'] });
      await within(2000, () => (b.stats().pubsub.senderRestarts === 1 ? true : undefined), 'the restart counted');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'dropped: the next check reads the store');
      const s = seqStats(b);
      assert.deepEqual(s, { gaps: 0, outOfOrder: 0, senderRestarts: 1, lateJoins: 0, nearDrops: 1 });
      heard.off();
      diag(`${name}: sender restart (${nodeId}): B ${JSON.stringify(s)}`);
      await shut(a2);
      await shut(b);
    });

    // Issue 15 item 3: a subscriber's own reconnect drops its near caches (messages sent while
    // it was away are lost to it). On Redis: CLIENT KILL TYPE pubsub; memory:// has no link to
    // lose, so there the subscription is closed and opened again.
    it('its own reconnect drops the near caches', async () => {
      const b = await open({ nodeId: `gb-${uid()}` });
      const u = await staleNear(b);
      const resubscribes = b.pubsub.status().resubscribes;
      if (name === 'memory') {
        await b.pubsub.shutdown();
        assert.equal(await b.pubsub.subscribe(), true);
      } else {
        // on a cluster the subscriber may sit on any node: every node's pub/sub clients
        const killers = name === 'cluster'
          ? backend.cluster.urls.map((u) => new Redis({ host: '127.0.0.1', port: Number(u.split(':').pop()), maxRetriesPerRequest: 1 }))
          : [rawClient(backend)];
        let killed = 0;
        try {
          for (const k of killers) killed += await k.client('KILL', 'TYPE', 'pubsub');
        } finally {
          if (name === 'cluster') for (const k of killers) k.disconnect();
        }
        assert.ok(killed >= 1, 'the subscriber connection was killed');
        await within(10_000, () => (b.pubsub.status().resubscribes > resubscribes && b.pubsub.isConnected() ? true : undefined), 'B subscribed again');
      }
      assert.equal(b.permissionCache.nearCacheStats().size, 0, 'the near cache was dropped');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'the next check reads the store');
      diag(`${name}: own reconnect: resubscribes ${resubscribes} → ${b.pubsub.status().resubscribes}, near entries after: 0, stale answer gone`);
      await shut(b);
    });

    // Issue 15 item 3: no false positives. 2,000 messages from 3 senders, in concurrent bursts
    // mixing the direct publish path and the invalidate* paths (delete, then publish) on the
    // same channels → 0 gaps, 0 out of order, 0 drops.
    it('no false positives: 2,000 messages from 3 senders in bursts → 0 gaps', async () => {
      const b = await open({ nodeId: `gb-${uid()}` });
      const senders = [];
      for (let i = 0; i < 3; i++) senders.push(await open({ nodeId: `gs${i}-${uid()}` }));
      const ids = new Set(senders.map((s) => s.pubsub.status().sender));
      let count = 0;
      const offs = CHANNELS.map((ch) => b.pubsub.onMessage(ch, (m) => (ids.has(m.sender) ? count++ : 0)));
      const TOTAL = 2000;
      const BURST = 100;
      const ops = [
        (s, i) => s.pubsub.publishPermissionInvalidation({ type: 'user', userId: `n${i}` }),
        (s, i) => s.pubsub.invalidateUserPermissions(`n${i}`),
        (s, i) => s.pubsub.publishCacheInvalidation({ keys: [`dash:${i}`] }),
        (s, i) => s.pubsub.invalidateKeys([`dash:${i}`]),
        (s, i) => s.pubsub.publishSessionInvalidation({ type: 'user', userId: `n${i}` }),
        (s, i) => s.pubsub.invalidateUserSessions(`n${i}`),
      ];
      const t0 = Date.now();
      for (let sent = 0; sent < TOTAL; sent += BURST) {
        const burst = [];
        for (let i = sent; i < Math.min(TOTAL, sent + BURST); i++) burst.push(ops[i % ops.length](senders[i % 3], i));
        await Promise.all(burst);
      }
      await within(20_000, () => (count === TOTAL ? true : undefined), `all ${TOTAL} messages heard (heard ${count})`);
      const ms = Date.now() - t0;
      const s = seqStats(b);
      const st = b.pubsub.status();
      assert.deepEqual(s, { gaps: 0, outOfOrder: 0, senderRestarts: 0, lateJoins: 0, nearDrops: 0 });
      assert.equal(st.unnumbered, 0);
      assert.ok(st.numbered >= TOTAL);
      assert.ok(st.senders >= 3);
      for (const off of offs) off();
      diag(`${name}: ${TOTAL} messages from 3 senders in bursts of ${BURST} (${ms} ms): heard ${count}, gaps ${s.gaps}, outOfOrder ${s.outOfOrder}, senderRestarts ${s.senderRestarts}, lateJoins ${s.lateJoins}, nearDrops ${s.nearDrops}`);
      for (const c of senders) await shut(c);
      await shut(b);
    });
  });
}
