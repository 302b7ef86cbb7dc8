'use strict';
// The general cache: get / set / del / wrap on any key under keyPrefix (docs/cache.md).
//
// The stored form of a value: ./stored.js; the options of set and wrap: ./options.js.
//
// wrap's fills are guarded like the session loader's (src/store/revision.rs): a miss read gives
// the key's revision and time, the fill is written only if the revision has not moved. `del`,
// invalidateKeys and invalidatePattern (lib/pubsub.js) bump the revisions of what they delete,
// and invalidatePattern also those of keys with a load in flight (the miss read creates the
// revision key), so a load that began before them is not cached, on any node. The loads in
// flight they match are also marked here (on this node at once, on the others when the
// cache:invalidate message arrives), and a caller whose miss read came after a revocation
// never joins an older load (the single-flight key holds the revision it saw).
//
// A del or invalidateKeys that could not reach Redis is kept by the revocation journal
// (lib/journal.js) and replayed; until then this node's get misses that key and wrap asks the
// loader without caching its answer.
//
// wrap's `lock` (single-flight across nodes): the miss read also takes a lease key in the
// key's slot (SET NX PX, an owner id); its holder loads and fills (the fill's script releases
// the lease); the others poll the key with a bounded backoff until the value is there, the
// lease is free again (its holder failed or died: they take it over) or their own bound
// passes (then they call their own loader). Polling rather than a pub/sub wake-up: it needs no
// subscription, works alike on Cluster and memory://, and a dead holder has to be noticed by
// its lease's expiry anyway, which no message announces.

const crypto = require('crypto');
const { typeError, rangeError, checkString } = require('../errors');
const { CHANNEL, CODES } = require('../rules');
const replies = require('../replies');
const { setTtlMs, wrapOptions } = require('./options');
const { encode, decode } = require('./stored');
const { globRegExp } = require('./glob');

// The per-process near cache of decoded values (wrap's `near`): its bounds.
const NEAR_MAX_ENTRIES = 1000;
const NEAR_MAX_BYTES = 16 * 1024 * 1024;
// Most keys one del takes (src/api/cache.rs MAX_DEL_KEYS).
const MAX_DEL_KEYS = 1000;

const LOADER_TIMEOUT = 'ERR_LOADER_TIMEOUT';
// wrap's lock: a waiter polls after LOCK_POLL_MIN_MS, doubling up to LOCK_POLL_MAX_MS.
const LOCK_POLL_MIN_MS = 10;
const LOCK_POLL_MAX_MS = 200;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Rejects with ERR_LOADER_TIMEOUT when `promise` has not settled within `ms`.
function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`the loader did not answer within ${ms} ms (nothing was cached)`);
      e.code = LOADER_TIMEOUT;
      reject(e);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class GeneralCache {
  constructor(ctx, pubsub) {
    this.ctx = ctx;
    // Revocations pending replay (lib/journal.js): size 0 when none.
    this.journal = ctx.journal;
    // wrap's lock: this instance's lease owner ids are `<owner>:<n>`.
    this.owner = crypto.randomBytes(8).toString('hex');
    this.leaseSeq = 0;
    this.stats = ctx.stats.cache = {
      hits: 0,
      misses: 0,
      fallbacks: 0,
      loaderCalls: 0,
      errors: 0,
      // Loader values not cached because a revocation came after their miss read.
      staleFills: 0,
      // Values served past their fresh time (staleSec), and the refreshes that started.
      staleServed: 0,
      refreshes: 0,
      refreshErrors: 0,
      loaderTimeouts: 0,
      // Loader values that could not be stored (not serialisable, over maxValueBytes).
      uncacheable: 0,
      // Stored values not in a form this cache writes (read as a miss).
      corrupt: 0,
      nearHits: 0,
      // wrap's lock: callers that waited for another caller's load, got its value, or waited
      // until their own bound and called their own loader.
      lockWaits: 0,
      lockHits: 0,
      lockTimeouts: 0,
    };
    // wrap's near cache: key → { value, gen, expires, freshUntil, bytes }, at most
    // NEAR_MAX_ENTRIES entries and NEAR_MAX_BYTES bytes (of their stored form), oldest first out.
    this.near = new Map();
    this.nearBytes = 0;
    // The loads in flight (wrap's and the stale refreshes'): key → Set of { revoked }.
    this.loading = new Map();
    // The keys whose stale value is being refreshed.
    this.refreshing = new Set();
    // invalidateKeys / invalidatePattern on this node (called by lib/pubsub.js before the
    // native call) and on the others (their cache:invalidate message).
    ctx.onInvalidate = (msg) => this.invalidated(msg);
    pubsub.onMessage(CHANNEL.cache, (msg) => this.invalidated(msg));

    this.getStart = (n, id, key) => {
      checkString(key, 'key');
      n.cacheGet(id, key);
    };
    this.getValue = (s) => {
      const d = this.read(s);
      return d === null ? null : d.value;
    };
    this.getError = ctx.soft('cache', null);
  }

  // A stored string → its decoded form, counting the hit or the miss.
  read(s) {
    if (s === null) {
      this.stats.misses++;
      return null;
    }
    const d = decode(s);
    if (d === null) {
      this.stats.corrupt++;
      this.stats.misses++;
      return null;
    }
    this.stats.hits++;
    return d;
  }

  // → the value, or null (a miss, or Redis failed: counted in errors). A key whose revocation
  // is pending replay (lib/journal.js) misses without asking Redis.
  get(key) {
    if (this.journal.size !== 0 && typeof key === 'string' && this.journal.revokesKey(key)) {
      this.stats.misses++;
      return Promise.resolve(null);
    }
    return this.ctx.opArg(this.getStart, key, this.getValue, this.getError);
  }

  // → true, or false when Redis failed. `ttlSec` is required.
  set(key, value, opts) {
    return this.ctx.op(
      (n, id) => {
        checkString(key, 'key');
        const ttlMs = setTtlMs(opts);
        const s = encode(value);
        this.nearDrop(key);
        n.cacheSet(id, key, s, ttlMs);
      },
      undefined,
      this.ctx.soft('cache', false),
    );
  }

  // → how many of the keys existed (0 when Redis failed: the keys are then kept by the
  // revocation journal and replayed). A del is a revocation: a wrap load whose miss read came
  // before it is not cached, on any node.
  del(keyOrKeys) {
    const keys = typeof keyOrKeys === 'string' ? [keyOrKeys] : keyOrKeys;
    return this.ctx.op(
      (n, id) => {
        if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
          throw typeError('del takes a key (a string) or an array of keys');
        }
        if (keys.length > MAX_DEL_KEYS) throw rangeError(`del takes at most ${MAX_DEL_KEYS} keys (got ${keys.length})`, CODES.valueTooLarge);
        n.cacheDel(id, keys);
        for (const k of keys) {
          this.nearDrop(k);
          this.ctx.detachFlights(`cache:${k}#`);
        }
      },
      undefined,
      (err) => {
        this.ctx.failed('cache', err);
        if (err.code !== CODES.disabled && Array.isArray(keys) && keys.length <= MAX_DEL_KEYS) {
          for (const k of keys) this.journal.record('cacheKeys', k, false);
        }
        return 0;
      },
    );
  }

  // Read-through: the cached value, else `loader()` once for all concurrent callers of this
  // process, its value cached for ttlSec (+ staleSec) unless a revocation came meanwhile.
  wrap(key, loader, opts) {
    let o;
    try {
      checkString(key, 'key');
      if (typeof loader !== 'function') throw typeError('loader must be a function');
      o = wrapOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.journal.size !== 0 && this.journal.revokesKey(key)) {
      // its revocation is pending replay: neither Redis nor the near cache is read, and the
      // loader's answer is not cached
      this.stats.misses++;
      return this.load({ key, loader, o, gen: NaN }, null, null, null);
    }
    const gen = o.nearTtlMs > 0 ? this.nearGen() : NaN;
    if (!Number.isNaN(gen)) {
      const e = this.near.get(key);
      if (e !== undefined) {
        const now = Date.now();
        if (e.gen === gen && e.expires > now && e.freshUntil > now) {
          this.stats.nearHits++;
          this.stats.hits++;
          return Promise.resolve(e.value);
        }
        this.nearDrop(key);
      }
    }
    const call = { key, loader, o, gen };
    return this.ctx.opArg(this.getStart, key, (s) => this.wrapValue(s, call), (err) => this.wrapError(err, call));
  }

  wrapValue(s, call) {
    const d = this.read(s);
    if (d === null) return this.missRead(call);
    return this.serve(d, s.length, call);
  }

  // A value read from Redis: fresh, or stale (served while one refresh runs).
  serve(d, bytes, call) {
    if (d.freshUntil <= Date.now()) {
      this.stats.staleServed++;
      this.refresh(call);
    } else if (!Number.isNaN(call.gen) && this.journal.mayCacheKey(call.key)) {
      this.nearPut(call.key, d.value, call.gen, call.o.nearTtlMs, d.freshUntil, bytes);
    }
    return d.value;
  }

  // Redis failed: the loader answers (once for all concurrent callers), nothing is cached.
  wrapError(err, call) {
    this.ctx.failed('cache', err);
    return this.load(call, null, null, null);
  }

  // A miss: the miss read (a value written meanwhile, or the revision that guards the fill;
  // with `lock`, the lease taken, or held by another caller).
  missRead(call) {
    const owner = call.o.lock === null ? null : this.nextOwner();
    return this.ctx.op(
      (n, id) => this.submitMissRead(n, id, call, owner),
      (r) => {
        const m = replies.cacheMiss(r);
        const d = m.value !== null ? decode(m.value) : null;
        if (d !== null) {
          this.stats.misses--;
          this.stats.hits++;
          return this.serve(d, m.value.length, call);
        }
        return this.load(call, m.rev, m.t, m.lease === 'none' ? null : owner, m.lease === 'held');
      },
      (err) => {
        this.ctx.failed('cache', err);
        return this.load(call, null, null, null);
      },
    );
  }

  nextOwner() {
    this.leaseSeq = (this.leaseSeq + 1) % Number.MAX_SAFE_INTEGER;
    return `${this.owner}:${this.leaseSeq}`;
  }

  submitMissRead(n, id, call, owner) {
    if (owner === null) n.cacheMissRead(id, call.key);
    else n.cacheMissRead(id, call.key, owner, call.o.lock.leaseMs);
  }

  // The loader's value for `call.key`, filled under the revision `rev` seen at time `t`
  // (null: not cached). `owner`: the lease this caller took (wrap's lock), or, with `held`,
  // the owner id it polls with while another caller holds the lease.
  load(call, rev, t, owner, held = false) {
    return this.ctx.singleFlight(`cache:${call.key}#${rev === null ? '-' : rev}`, async () => {
      let seen = { rev, t, owner };
      if (held) {
        seen = await this.awaitFill(call, rev, t, owner);
        if (seen.hit !== undefined) return seen.hit;
      }
      const value = await this.runLoader(call, seen.rev, seen.t, seen.owner);
      this.stats.fallbacks++;
      return value;
    });
  }

  // wrap's lock: another caller holds the key's lease. Polls with a lock-aware miss read,
  // bounded in count and by this caller's lock.timeoutMs, until the value is there (→ { hit }),
  // the lease is free again (its holder wrote nothing, or died and the lease expired: this
  // caller takes it → { rev, t, owner }), Redis fails (→ loaded, not cached), or the bound
  // passes (→ this caller's own load, its fill still guarded by the revision it saw).
  async awaitFill(call, rev, t, owner) {
    this.stats.lockWaits++;
    const deadline = Date.now() + call.o.lock.timeoutMs;
    let delay = LOCK_POLL_MIN_MS;
    let last = { rev, t, owner: null };
    for (let polls = 0; polls < Math.ceil(call.o.lock.timeoutMs / LOCK_POLL_MIN_MS) + 1; polls++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, LOCK_POLL_MAX_MS);
      const r = await this.ctx.op(
        (n, id) => this.submitMissRead(n, id, call, owner),
        replies.cacheMiss,
        (err) => {
          this.ctx.failed('cache', err);
          return null;
        },
      );
      if (r === null) return { rev: null, t: null, owner: null };
      if (r.value !== null) {
        const d = decode(r.value);
        if (d === null) return { rev: r.rev, t: r.t, owner: null }; // not ours to read: load
        this.stats.lockHits++;
        this.stats.misses--;
        this.stats.hits++;
        return { hit: this.serve(d, r.value.length, call) };
      }
      if (r.lease !== 'held') return { rev: r.rev, t: r.t, owner: r.lease === 'taken' ? owner : null };
      last = { rev: r.rev, t: r.t, owner: null };
    }
    this.stats.lockTimeouts++;
    return last;
  }

  // Calls the loader (bounded by loaderTimeoutMs) and, when rev is given, fills the key (and
  // releases `owner`'s lease, also when nothing is written).
  async runLoader(call, rev, t, owner = null) {
    const { key, loader, o } = call;
    const mark = { revoked: false };
    let marks = this.loading.get(key);
    if (marks === undefined) this.loading.set(key, (marks = new Set()));
    marks.add(mark);
    try {
      this.stats.loaderCalls++;
      let value;
      try {
        value = await withTimeout(
          Promise.resolve().then(() => loader()),
          o.loaderTimeoutMs,
        );
      } catch (err) {
        if (err && err.code === LOADER_TIMEOUT) this.stats.loaderTimeouts++;
        throw err;
      }
      if (rev !== null && value !== undefined && !mark.revoked && this.journal.mayCacheKey(key)) {
        if (await this.fill(call, value, rev, t, mark, owner)) owner = null;
      }
      return value;
    } finally {
      if (owner !== null) this.releaseLease(key, owner);
      marks.delete(mark);
      if (marks.size === 0 && this.loading.get(key) === marks) this.loading.delete(key);
    }
  }

  // The guarded write of a loader's value (waited for, so that the next call finds it) → true
  // when the fill reached Redis (its script released `owner`'s lease).
  fill(call, value, rev, t, mark, owner) {
    const { key, o } = call;
    const freshUntil = o.staleMs > 0 ? Date.now() + o.ttlMs : undefined;
    let s;
    try {
      s = encode(value, freshUntil);
    } catch {
      this.stats.uncacheable++; // not serialisable: the caller still gets the value
      return false;
    }
    return this.ctx
      .op(
        (n, id) => {
          if (owner === null) n.cacheFill(id, key, s, o.ttlMs + o.staleMs, rev, t);
          else n.cacheFill(id, key, s, o.ttlMs + o.staleMs, rev, t, owner);
        },
        (written) => {
          if (!written) this.stats.staleFills++;
          else if (!mark.revoked && !Number.isNaN(call.gen)) this.nearPut(key, value, call.gen, o.nearTtlMs, freshUntil === undefined ? Infinity : freshUntil, s.length);
          return true;
        },
        this.ctx.soft('cache', false),
      )
      .catch(() => {
        this.stats.uncacheable++; // over maxValueBytes: the caller still gets the value
        return false;
      });
  }

  // Releases a lease this caller took but did not fill (in the background; a failure leaves
  // it to expire).
  releaseLease(key, owner) {
    this.ctx.op((n, id) => n.cacheLeaseRelease(id, key, owner), undefined, this.ctx.soft('cache', false)).catch(() => {});
  }

  // One background refresh of a stale key (per process); its failure is counted, never thrown.
  refresh(call) {
    const { key } = call;
    if (this.refreshing.has(key)) return;
    this.refreshing.add(key);
    this.stats.refreshes++;
    const done = () => this.refreshing.delete(key);
    this.ctx
      .op(
        (n, id) => n.cacheMissRead(id, key),
        (r) => {
          const m = replies.cacheMiss(r);
          return this.runLoader({ ...call, gen: NaN }, m.rev, m.t);
        },
        (err) => {
          this.ctx.failed('cache', err);
        },
      )
      .then(done, () => {
        this.stats.refreshErrors++;
        done();
      });
  }

  // invalidateKeys / invalidatePattern (this node's call, or another node's message): the
  // loads in flight on matching keys are not cached; the near cache is voided by the
  // generation word (every invalidation moves it), and matching entries are dropped here too.
  invalidated(msg) {
    if (msg === null || typeof msg !== 'object') return;
    if (Array.isArray(msg.keys)) {
      for (const k of msg.keys) {
        if (typeof k !== 'string') continue;
        this.nearDrop(k);
        const marks = this.loading.get(k);
        if (marks !== undefined) for (const m of marks) m.revoked = true;
        this.ctx.detachFlights(`cache:${k}#`);
      }
    }
    if (typeof msg.pattern === 'string') {
      let re;
      try {
        re = globRegExp(msg.pattern);
      } catch {
        this.nearClear();
        return;
      }
      for (const k of [...this.near.keys()]) if (re.test(k)) this.nearDrop(k);
      for (const [k, marks] of this.loading) {
        if (!re.test(k)) continue;
        for (const m of marks) m.revoked = true;
        this.ctx.detachFlights(`cache:${k}#`);
      }
    }
  }

  // The near cache's generation (lib/near_l1.js: moved by every invalidation this node applies
  // or hears, NaN while the subscription is down or the near cache is off).
  nearGen() {
    const l1 = this.ctx.bridgeInstance === null ? null : this.ctx.nearL1;
    return l1 === null ? NaN : l1.live();
  }

  nearPut(key, value, gen, ttlMs, freshUntil, bytes) {
    this.nearDrop(key);
    const size = bytes;
    if (size > NEAR_MAX_BYTES) return;
    this.near.set(key, { value, gen, expires: Date.now() + ttlMs, freshUntil, bytes: size });
    this.nearBytes += size;
    for (const [k] of this.near) {
      if (this.near.size <= NEAR_MAX_ENTRIES && this.nearBytes <= NEAR_MAX_BYTES) break;
      this.nearDrop(k);
    }
  }

  nearDrop(key) {
    const e = this.near.get(key);
    if (e === undefined) return;
    this.near.delete(key);
    this.nearBytes -= e.bytes;
  }

  nearClear() {
    this.near.clear();
    this.nearBytes = 0;
  }

  // Live near entries (for tests and stats).
  nearSize() {
    return this.near.size;
  }
}

module.exports = { GeneralCache };
