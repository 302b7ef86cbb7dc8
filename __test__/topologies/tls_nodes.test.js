'use strict';
// TLS and credentials to every node of a topology: a Redis Cluster on TLS ports only (3
// primaries, `--tls-cluster yes`, every node with a password) reached through ONE rediss:// seed
// carries sessions, limits, locks and pub/sub, so the nodes learnt from CLUSTER SLOTS get TLS
// and the ACL user too; it follows a MOVED after a slot migration; a server certificate the
// configured CA did not sign is refused (no plaintext fallback: the nodes have no plaintext
// port). Sentinels on TLS with their own password, data nodes on TLS with another: the primary
// is resolved, each password goes to its own side, and a failover is followed. Sentinels with an
// ACL user (Redis 7 `user` lines). A wrong sentinel password fails with a code and no password
// in any message. Part of `npm run test:topologies`.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { createCache } = require('../..');
const { sleep, makePki } = require('../helpers/redis');
const { startCluster, startSentinel } = require('../helpers/topologies');
const { waitFor } = require('../helpers/faults');

const uid = () => crypto.randomBytes(8).toString('hex');
const ADMIN_PASSWORD = 'cluster-admin-pa55';
const APP = { user: 'app', pass: 'app-user-pa55' };
const SENTINEL_PASSWORD = 'sentinel-pa55word';
const DATA_PASSWORD = 'data-node-pa55word';
const SECRETS = [ADMIN_PASSWORD, APP.pass, SENTINEL_PASSWORD, DATA_PASSWORD];

// helpers/faults.js' waitFor, a throw counting as not yet → ms waited; fails the test past
// `boundMs`.
async function within(what, check, boundMs = 15000) {
  const ms = await waitFor(async () => check().catch(() => false), { timeoutMs: boundMs, everyMs: 25 });
  assert.ok(ms >= 0, `${what}: not within ${boundMs} ms`);
  return Math.round(ms);
}

// Sessions, rate limits, locks and pub/sub through `options`, on keys spread over every slot
// range (a cluster routes them to every primary).
async function everyService(options) {
  const cache = createCache({ ...options, commandTimeoutMs: 1000, connectTimeoutMs: 2000 });
  const sub = createCache({ ...options, commandTimeoutMs: 1000, connectTimeoutMs: 2000, nodeId: 'sub' });
  try {
    assert.equal((await cache.ping()).pong, 'PONG');
    const hashes = Array.from({ length: 24 }, () => uid());
    for (const h of hashes) assert.equal(await cache.sessionCache.setSession(h, { user_id: 7 }), true);
    for (const h of hashes) assert.equal((await cache.sessionCache.getSession(h)).user_id, 7);
    const hits = await Promise.all(Array.from({ length: 50 }, (_, i) => cache.rateLimiter.checkLimit(`10.3.0.${i}`, '/tls')));
    assert.ok(hits.every((h) => h.total === 1), 'one hit each, on keys of every primary');
    const id = uid();
    const lock = await cache.distributedLock.acquire('tls', id);
    assert.equal(lock.acquired, true);
    assert.equal((await sub.distributedLock.acquire('tls', id)).acquired, false, 'held: not granted twice');
    assert.equal(await cache.distributedLock.release('tls', id, lock.owner), true);
    const got = [];
    const nonce = uid();
    sub.pubsub.onMessage('cache:invalidate', (m) => { if (m.nonce === nonce) got.push(m); });
    assert.equal(await sub.pubsub.subscribe(), true);
    await within('a message over the TLS subscriber', async () => {
      await cache.pubsub.publishCacheInvalidation({ keys: [], nonce });
      await sleep(50);
      return got.length > 0;
    }, 5000);
    const st = cache.stats();
    for (const s of ['session', 'rateLimit', 'lock', 'pubsub']) assert.equal(st[s].errors, 0, `${s} errors`);
  } finally {
    await cache.shutdown();
    await sub.pubsub.shutdown();
    await sub.shutdown();
  }
}

// A cache whose back end must stay unreachable: ping reports it with a code and without any
// password; a call falls back.
async function refusedSoftly(options, what, mustSay) {
  const cache = createCache({ ...options, commandTimeoutMs: 500, connectTimeoutMs: 1000 });
  const errors = [];
  cache.on('error', (err) => errors.push(err));
  try {
    const p = await cache.ping();
    assert.equal(p.pong, null, what);
    assert.ok(p.error, what);
    for (const s of SECRETS) assert.ok(!p.error.includes(s), `${what}: ${p.error}`);
    if (mustSay) assert.match(p.error, mustSay, what);
    assert.equal(await cache.sessionCache.setSession(uid(), { user_id: 1 }), false, `${what}: falls back`);
    await within(`${what}: an error event`, async () => errors.length > 0, 2000);
    for (const err of errors) {
      assert.ok(['ECACHEUNAVAILABLE', 'ETIMEDOUT', 'ECIRCUITOPEN'].includes(err.code), `${what}: ${err.code} ${err.message}`);
      for (const s of SECRETS) assert.ok(!String(err.message).includes(s), `${what}: ${err.message}`);
    }
    return p.error;
  } finally {
    await cache.shutdown();
  }
}

let dir;
let pki;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-tls-nodes-'));
  pki = makePki(dir);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Redis Cluster over TLS, an ACL user on every node', () => {
  let cluster;
  let seed;
  const started = Date.now();
  before(async () => {
    cluster = await startCluster({ tls: pki, password: ADMIN_PASSWORD, replicas: 0, nodeTimeoutMs: 5000 });
    for (const n of cluster.nodes) await cluster.ask(n.port, 'ACL', 'SETUSER', APP.user, 'on', `>${APP.pass}`, '~*', '&*', '+@all');
    // one seed only: the other primaries are learnt from CLUSTER SLOTS
    seed = [cluster.urls[0]];
  });
  after(async () => {
    await cluster.stop();
    console.log(`# TLS cluster suite: ${Date.now() - started} ms with the cluster's start`);
  });

  it('sessions, limits, locks and pub/sub on every primary, through one rediss:// seed', async () => {
    await everyService({ cluster: seed, tls: { ca: pki.ca }, username: APP.user, password: APP.pass });
  });

  it('a slot moved to another primary: MOVED is followed to a node reached over TLS', async () => {
    const cache = createCache({ cluster: seed, tls: { ca: pki.ca }, username: APP.user, password: APP.pass, commandTimeoutMs: 1000, connectTimeoutMs: 2000 });
    try {
      const h = uid();
      assert.equal(await cache.sessionCache.setSession(h, { user_id: 9 }), true);
      const key = `session:${h}`;
      const from = await cluster.primaryOf(key);
      const to = (await cluster.primaries()).find((p) => p !== from);
      const slot = await cluster.ask(from, 'CLUSTER', 'KEYSLOT', key);
      const fromId = await cluster.ask(from, 'CLUSTER', 'MYID');
      const toId = await cluster.ask(to, 'CLUSTER', 'MYID');
      await cluster.ask(to, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId);
      await cluster.ask(from, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId);
      // MIGRATE between TLS nodes runs on TLS (tls-cluster), with the admin's password
      await cluster.ask(from, 'MIGRATE', '127.0.0.1', String(to), '', '0', '5000', 'AUTH', ADMIN_PASSWORD, 'KEYS', key);
      await cluster.ask(to, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', toId);
      await cluster.ask(from, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', toId);
      const native = cache.ctx.bridge.native;
      const [moved0] = native.clusterCounts();
      const got = await cache.sessionCache.getSession(h);
      const [moved1] = native.clusterCounts();
      assert.equal(got && got.user_id, 9, 'read on the new owner');
      assert.equal(await cluster.ask(to, 'EXISTS', key), 1, 'the key lives on the new owner');
      console.log(`# TLS cluster: slot ${slot} moved ${from} → ${to}; MOVED followed: ${moved1 - moved0}`);
      assert.ok(moved1 - moved0 >= 1, 'the read was answered MOVED and followed it');
    } finally {
      await cache.shutdown();
    }
  });

  it('a server certificate the configured CA did not sign is refused; nothing falls back to plaintext', async () => {
    const said = await refusedSoftly({ cluster: seed, tls: { ca: pki.other }, username: APP.user, password: APP.pass }, 'wrong CA');
    assert.match(said, /TLS|certificate/i, said);
    // a plaintext URL to the same TLS-only port does not get an answer either
    await refusedSoftly({ cluster: [seed[0].replace('rediss://', 'redis://')], username: APP.user, password: APP.pass }, 'plaintext to a TLS port');
  });
});

describe('Redis Sentinel over TLS: sentinels with their own password, data nodes with another', () => {
  let setup;
  const started = Date.now();
  before(async () => {
    setup = await startSentinel({ tls: pki, dataPassword: DATA_PASSWORD, sentinelAuth: { password: SENTINEL_PASSWORD }, downAfterMs: 1000 });
  });
  after(async () => {
    await setup.stop();
    console.log(`# TLS sentinel suite: ${Date.now() - started} ms with the set-up's start`);
  });
  const options = () => ({ sentinel: { masterName: setup.masterName, nodes: setup.nodes }, tls: { ca: pki.ca }, sentinelPassword: SENTINEL_PASSWORD, password: DATA_PASSWORD });

  it('the primary is resolved over TLS and every service runs on it', async () => {
    await everyService(options());
  });

  it('each password goes to its own side: swapped or wrong, the failure says so without the password', async () => {
    const wrongSentinel = await refusedSoftly({ ...options(), sentinelPassword: 'not-the-sentinel-pa55' }, 'wrong sentinel password', /sentinel/i);
    console.log(`# wrong sentinel password: ${wrongSentinel}`);
    assert.match(wrongSentinel, /WRONGPASS|invalid password|AUTH/i);
    await refusedSoftly({ ...options(), sentinelPassword: DATA_PASSWORD, password: SENTINEL_PASSWORD }, 'passwords swapped', /sentinel/i);
    await refusedSoftly({ ...options(), password: 'not-the-data-pa55' }, 'wrong data password');
    // the sentinels' TLS settings apart from the data nodes': a CA that did not sign them
    await refusedSoftly({ ...options(), sentinelTls: { ca: pki.other } }, 'sentinelTls with another CA', /sentinel/i);
  });

  it('SENTINEL FAILOVER: calls resume on the new primary, over TLS', async () => {
    const cache = createCache({ ...options(), commandTimeoutMs: 500, connectTimeoutMs: 1000 });
    try {
      const h = uid();
      assert.equal(await cache.sessionCache.setSession(h, { user_id: 4 }), true);
      const switched = await setup.failover();
      const resumedMs = await within('a round trip after the failover', async () => {
        const k = uid();
        return (await cache.sessionCache.setSession(k, { user_id: 5 })) && (await cache.sessionCache.getSession(k)) !== null;
      });
      console.log(`# TLS sentinel: failover ${switched.from} → ${switched.to} after ${switched.switchedAfterMs} ms; calls resumed ${resumedMs} ms later`);
      assert.ok(resumedMs <= 5000, `resumed after ${resumedMs} ms`);
      // the demoted primary may take a write or two before it is reconfigured: the writes
      // land on the new one within a bounded wait
      await within('writes landing on the new primary', async () => {
        const k = uid();
        await cache.sessionCache.setSession(k, { user_id: 6 });
        return (await setup.askData(switched.to, 'EXISTS', `session:${k}`)) === 1;
      }, 5000);
    } finally {
      await cache.shutdown();
    }
  });
});

describe('Redis Sentinel with an ACL user on the sentinels', () => {
  let setup;
  before(async () => {
    setup = await startSentinel({ dataPassword: DATA_PASSWORD, sentinelAuth: { username: 'watcher', password: SENTINEL_PASSWORD } });
  });
  after(async () => setup.stop());

  it('sentinelUsername/sentinelPassword reach the sentinels, password the data nodes; a wrong user is refused', async () => {
    const options = { sentinel: { masterName: setup.masterName, nodes: setup.nodes }, sentinelUsername: 'watcher', sentinelPassword: SENTINEL_PASSWORD, password: DATA_PASSWORD };
    const cache = createCache({ ...options, commandTimeoutMs: 1000, connectTimeoutMs: 2000 });
    try {
      const h = uid();
      assert.equal(await cache.sessionCache.setSession(h, { user_id: 2 }), true);
      assert.equal((await cache.sessionCache.getSession(h)).user_id, 2);
    } finally {
      await cache.shutdown();
    }
    await refusedSoftly({ ...options, sentinelUsername: 'nobody' }, 'unknown sentinel user', /sentinel/i);
    await refusedSoftly({ ...options, sentinelUsername: undefined }, 'the sentinels\' default user is off', /sentinel/i);
  });
});
