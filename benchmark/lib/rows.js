'use strict';
// The per-operation rows of the benchmark, shared by benchmark/suite.js (ours against the
// ioredis baseline) and benchmark/builds.js (one build of this package against another): the
// operations, their data and seeding, how our cache is opened for them, and one tinybench round.
//
//   operations(hashToken, ours, oursFar)  the rows; `ours`, `oursFar` (and `base(b)`'s argument)
//                                         are only read when a row runs: null gives the names
//   openOurs(createCache, conn, keys)     { ours, oursFar } as the rows `keys` need them
//   seedContender(c, hashToken, keys, l)  sessions (and permission snapshots) through the API
//   seedGeneral(ours, l)                  the general cache's entries (wrap rows; ours only)
//   round(series, inFlight, ms, calls)    one round → { series: calls per second }
//   missing(cache, op)                    why a build cannot run a row (a method it lacks), or null

const TOKENS = 1000;
const USERS = 1000;
// The operations measured on TLS and on the cluster.
const TOPOLOGY_OPS = ['sessionHit', 'checkLimit'];

const sessionData = (i) => ({ user_id: i, user: { id: i, name: `user ${i}`, role: 'CLERK' }, tenant: 'acme', roles: ['CLERK'] });
const snapshot = (i) => ({
  role: 'CLERK',
  modules: ['INVENTORY', 'REPORTS', 'SALES', 'PURCHASING', `M${i % 7}`],
  pages: { 'inventory-items': ['view', 'edit'], dashboard: ['*'], reports: ['view'] },
});
const token = (i) => `bench-token-${i}-${'x'.repeat(40)}`;
// The general cache's keys and value (a small report row set, as the guide caches).
const gcKey = (i) => `dash:stats:${i % TOKENS}`;
const gcValue = (i) => ({ id: i, name: 'dashboard', rows: Array.from({ length: 20 }, (_, r) => ({ r, v: `row-${r}` })) });
const rateLimits = { '/bench/search': { max: 1e9, windowSec: 60 } };

// One round: tinybench (ESM, loaded once) runs one task per series, one after the other, so the
// series alternate within the round. A task's iteration is a batch: `inFlight` lanes that each
// make PER_LANE calls of `op(i)` in a row, i.e. `inFlight` calls outstanding throughout, and the
// harness costs one timestamp pair per batch instead of per call (per call it would cap the
// fastest rows: 2.7M calls/s with tinybench's own task concurrency, below the near cache). The
// round lasts `ms` per series (tinybench's time budget; every batch is bounded in count).
// → { series: calls per second }; `calls`, if given, receives each series' count of calls.
let BenchClass = null;
async function round(series, inFlight, ms, calls = {}) {
  if (BenchClass === null) ({ Bench: BenchClass } = await import('tinybench'));
  const perLane = inFlight === 1 ? 256 : 8;
  const bench = new BenchClass({ time: ms, iterations: 1, warmup: false, throws: true });
  for (const [name, op] of Object.entries(series)) {
    let next = 0;
    calls[name] = 0;
    const lane = async () => {
      for (let k = 0; k < perLane; k++) await op(next++);
    };
    bench.add(name, async () => {
      const lanes = new Array(inFlight);
      for (let l = 0; l < inFlight; l++) lanes[l] = lane();
      await Promise.all(lanes);
      calls[name] += inFlight * perLane;
    });
  }
  await bench.run();
  return Object.fromEntries(bench.tasks.map((t) => [t.name, calls[t.name] / (t.result.totalTime / 1000)]));
}

// What every row's set-up calls on our cache (the subscriber, the sessions' seeding).
const COMMON_NEEDS = ['pubsub.subscribe', 'sessionCache.setSession', 'shutdown'];

// The operations. `needs`: the methods of our cache the row and its seeding call (a build
// without one of them cannot run the row).
function operations(hashToken, ours, oursFar) {
  const hashes = Array.from({ length: TOKENS }, (_, i) => hashToken(token(i)));
  const tokens = Array.from({ length: TOKENS }, (_, i) => token(i));
  const data = Array.from({ length: TOKENS }, (_, i) => sessionData(i));
  let lockSeq = 0;
  const check = (r, expected) => {
    if (r !== expected) throw new Error(`unexpected answer ${JSON.stringify(r)}`);
  };
  const sessionOk = (s) => {
    if (s === null || s.source !== 'cache') throw new Error('session miss in the hit benchmark');
  };
  const wrapOk = (v) => {
    if (v === null || v.rows === undefined) throw new Error('wrap miss in the hit benchmark');
  };
  const wrapMiss = () => {
    throw new Error('wrap miss in the hit benchmark');
  };
  const baseWrap = (s) => (s === null ? wrapMiss() : JSON.parse(s));
  return [
    {
      name: 'session hit (getSessionWithFallback)',
      key: 'sessionHit',
      needs: ['sessionCache.getSessionWithFallback'],
      ours: async (i) => sessionOk(await ours.sessionCache.getSessionWithFallback(tokens[i % TOKENS])),
      base: (b) => async (i) => sessionOk(await b.sessionCache.getSessionWithFallback(tokens[i % TOKENS])),
    },
    {
      name: 'setSession',
      key: 'setSession',
      needs: [],
      ours: async (i) => check(await ours.sessionCache.setSession(hashes[i % TOKENS], data[i % TOKENS]), true),
      base: (b) => async (i) => check(await b.sessionCache.setSession(hashes[i % TOKENS], data[i % TOKENS]), true),
    },
    {
      name: 'checkLimit',
      key: 'checkLimit',
      needs: ['rateLimiter.checkLimit'],
      ours: async (i) => check((await ours.rateLimiter.checkLimit(`10.0.${(i >> 8) & 3}.${i & 255}`, '/bench/search')).allowed, true),
      base: (b) => async (i) => check((await b.rateLimiter.checkLimit(`10.0.${(i >> 8) & 3}.${i & 255}`, '/bench/search')).allowed, true),
    },
    {
      name: 'hasModulePermission, near cache on',
      key: 'permNear',
      needs: ['permissionCache.hasModulePermission', 'permissionCache.setUserPermissions'],
      ours: async (i) => check(await ours.permissionCache.hasModulePermission(i % USERS, 'SALES'), true),
      base: (b) => async (i) => check(await b.permissionCache.hasModulePermission(i % USERS, 'SALES'), true),
    },
    {
      name: 'hasModulePermission, near cache off',
      key: 'permFar',
      needs: ['permissionCache.hasModulePermission', 'permissionCache.setUserPermissions'],
      ours: async (i) => check(await oursFar.permissionCache.hasModulePermission(i % USERS, 'SALES'), true),
      base: (b) => async (i) => check(await b.permissionCache.hasModulePermission(i % USERS, 'SALES'), true),
    },
    {
      name: 'acquire + release',
      key: 'lock',
      needs: ['distributedLock.acquire', 'distributedLock.release'],
      ours: async () => {
        const id = lockSeq++ % 100000;
        const l = await ours.distributedLock.acquire('bench', id, { ttlSec: 30 });
        if (!l.acquired) throw new Error('lock not acquired');
        check(await ours.distributedLock.release('bench', id, l.owner), true);
      },
      base: (b) => async () => {
        const id = lockSeq++ % 100000;
        const l = await b.distributedLock.acquire('bench-base', id, { ttlSec: 30 });
        if (!l.acquired) throw new Error('lock not acquired');
        check(await b.distributedLock.release('bench-base', id, l.owner), true);
      },
    },
    {
      // the general cache's read-through; the baseline reads the same JSON with GET + parse
      name: 'wrap hit',
      key: 'wrapHit',
      needs: ['wrap', 'set'],
      ours: async (i) => wrapOk(await ours.wrap(gcKey(i), wrapMiss, { ttlSec: 600 })),
      base: (b) => async (i) => wrapOk(baseWrap(await b.client.get(gcKey(i)))),
    },
    {
      name: 'wrap hit, near cache',
      key: 'wrapNear',
      needs: ['wrap', 'set'],
      ours: async (i) => wrapOk(await ours.wrap(gcKey(i), wrapMiss, { ttlSec: 600, near: true })),
      base: (b) => async (i) => wrapOk(baseWrap(await b.client.get(gcKey(i)))),
    },
    {
      name: 'publishSessionInvalidation',
      key: 'publish',
      needs: ['pubsub.publishSessionInvalidation'],
      ours: (i) => ours.pubsub.publishSessionInvalidation({ sessionId: hashes[i % TOKENS] }),
      base: (b) => (i) => b.pubsub.publish('sessions:invalidate', { sessionId: hashes[i % TOKENS] }),
    },
  ];
}

// The row keys, in the rows' order.
const ROW_KEYS = operations(() => '', null, null).map((op) => op.key);

// `cache` lacks a method `op` (or its set-up) calls → "no cache.<path>()"; else null.
function missing(cache, op) {
  for (const need of [...COMMON_NEEDS, ...op.needs]) {
    const parts = need.split('.');
    let target = cache;
    for (const p of parts) target = target == null ? undefined : target[p];
    if (typeof target !== 'function') return `no cache.${need}() in this build`;
  }
  return null;
}

// Our cache for the rows `keys`, on `conn` (createCache's connection options: url, tls,
// cluster): `ours`, and `oursFar` (near cache off) when a row reads it.
function openOurs(createCache, conn, keys) {
  const ours = createCache({ ...conn, rateLimits, nodeId: 'bench' });
  const oursFar = keys.includes('permFar') ? createCache({ ...conn, rateLimits, nodeId: 'bench', nearCacheTtlMs: 0 }) : null;
  return { ours, oursFar };
}

// A contender's sessions (every row set), then its permission snapshots when one of the rows
// `keys` reads them; through the API both implementations share. `label` names the topology in
// errors.
async function seedContender(c, hashToken, keys, label) {
  const perms = keys.some((k) => k.startsWith('perm'));
  for (let i = 0; i < TOKENS; i++) {
    if (!(await c.sessionCache.setSession(hashToken(token(i)), sessionData(i)))) throw new Error(`seeding the sessions failed (${label})`);
  }
  for (let i = 0; perms && i < USERS; i++) await c.permissionCache.setUserPermissions(i, snapshot(i));
}

// Our general cache's entries, read by the wrap rows.
async function seedGeneral(ours, label) {
  for (let i = 0; i < TOKENS; i++) {
    if (!(await ours.set(gcKey(i), gcValue(i), { ttlSec: 600 }))) throw new Error(`seeding the general cache failed (${label})`);
  }
}

module.exports = {
  TOKENS,
  USERS,
  TOPOLOGY_OPS,
  ROW_KEYS,
  rateLimits,
  token,
  sessionData,
  snapshot,
  gcKey,
  gcValue,
  round,
  operations,
  missing,
  openOurs,
  seedContender,
  seedGeneral,
};
