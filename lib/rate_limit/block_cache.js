'use strict';
// The block cache: clients known to be over their limit are answered in this process, with no
// Redis call, until their window ends; and resets made on any node reach every node's copy.

const { performance } = require('perf_hooks');
const { CHANNEL } = require('../rules');

// The in-process block cache: once a client is over its limit on an endpoint, further hits in
// that window are answered from here, with no Redis call, until the window ends (or the limit
// is reset through this instance). ip → Map(endpoint → { until, total }); `until` is on the
// monotonic clock and never later than the window's end in Redis (it is measured from when the
// hit was sent). Bounded: when full, expired entries go, then the oldest clients.
const BLOCK_CACHE_MAX = 100000;

class BlockCache {
  constructor(max = BLOCK_CACHE_MAX) {
    this.max = max;
    this.byIp = new Map();
    this.size = 0;
  }

  // → the live entry of (ip, endpoint), or undefined.
  get(ip, endpoint, now) {
    const eps = this.byIp.get(ip);
    if (eps === undefined) return undefined;
    const e = eps.get(endpoint);
    if (e === undefined) return undefined;
    if (e.until > now) return e;
    this.delete(ip, endpoint);
    return undefined;
  }

  set(ip, endpoint, until, total) {
    let eps = this.byIp.get(ip);
    const e = eps && eps.get(endpoint);
    if (e !== undefined) {
      e.until = until;
      e.total = Math.max(e.total, total);
      return;
    }
    if (this.size >= this.max) this.evict(performance.now());
    eps = this.byIp.get(ip);
    if (eps === undefined) {
      eps = new Map();
      this.byIp.set(ip, eps);
    }
    eps.set(endpoint, { until, total });
    this.size++;
  }

  delete(ip, endpoint) {
    const eps = this.byIp.get(ip);
    if (eps !== undefined && eps.delete(endpoint)) {
      this.size--;
      if (eps.size === 0) this.byIp.delete(ip);
    }
  }

  deleteIp(ip) {
    const eps = this.byIp.get(ip);
    if (eps !== undefined) {
      this.size -= eps.size;
      this.byIp.delete(ip);
    }
  }

  clear() {
    this.byIp.clear();
    this.size = 0;
  }

  // Drops expired entries, then the oldest clients until a tenth of the room is free. A dropped
  // entry only costs its client's next hit one Redis call.
  evict(now) {
    for (const [ip, eps] of this.byIp) {
      for (const [endpoint, e] of eps) if (e.until <= now) this.delete(ip, endpoint);
    }
    for (const ip of this.byIp.keys()) {
      if (this.size < this.max * 0.9) break;
      this.deleteIp(ip);
    }
  }
}

// The pub/sub message kind of a reset (on cache:invalidate): { type, ip, endpoint? }.
const RATE_RESET = 'rate-reset';
// How often the block cache looks at its subscription's state (see linkCheck).
const LINK_CHECK_MS = 50;

// Resets reach the block cache of every node: each reset is published on cache:invalidate and
// each node drops what it names when the message arrives. The subscription that hears them is
// started here (once per back end, when the block cache first holds an entry), so no app has
// to call pubsub.subscribe() for this. A message missed while the link was down (or dropped
// because JS lagged) cannot be known: once the link is seen back (resubscribes or dropped
// changed), the whole block cache is dropped (linkCheck).
class BlockSync {
  // `pubsub`: the instance's PubSub, or null (then resets stay on this node).
  constructor(ctx, blocks, pubsub) {
    this.ctx = ctx;
    this.blocks = blocks;
    this.pubsub = pubsub;
    this.subscribedOn = null; // the bridge whose subscription was started here
    this.linkOf = null; // the bridge and pub/sub state the block cache was last checked against
    this.linkState = '';
    this.linkNextCheck = 0;
    if (pubsub !== null && typeof pubsub.onInternalMessage === 'function') {
      pubsub.onInternalMessage(RATE_RESET, (m) => this.applyReset(m));
    }
  }

  // A reset message from any node (this one included): its block-cache entries go.
  applyReset(m) {
    if (typeof m.ip !== 'string') return;
    if (typeof m.endpoint === 'string') this.blocks.delete(m.ip, m.endpoint);
    else this.blocks.deleteIp(m.ip);
  }

  // Publishes a reset for the other nodes' block caches (never rejects; a failure counts in
  // pubsub's stats) → the reset's answer `n`.
  broadcast(n, ip, endpoint) {
    if (this.pubsub === null) return n;
    const msg = endpoint === undefined ? { type: RATE_RESET, ip } : { type: RATE_RESET, ip, endpoint };
    return this.pubsub.publish(CHANNEL.cache, msg).then(
      () => n,
      () => n,
    );
  }

  // Starts the subscription that carries resets, once per back end (pubsub.subscribe() is
  // idempotent and never rejects for back-end reasons).
  ensureSubscribed() {
    const b = this.ctx.bridgeInstance;
    if (this.pubsub === null || b === null || this.subscribedOn === b) return;
    this.subscribedOn = b;
    this.pubsub.subscribe().catch(() => {});
  }

  // Drops the whole block cache when resets may have been missed: the back end changed, or the
  // subscription was lost and made again, or messages were dropped, since the last look (at
  // most every LINK_CHECK_MS, and only when an entry is about to answer) → true if it did.
  linkCheck(now) {
    if (now < this.linkNextCheck) return false;
    this.linkNextCheck = now + LINK_CHECK_MS;
    const b = this.ctx.bridgeInstance;
    let state = '';
    if (b !== null && this.pubsub !== null) {
      try {
        const st = b.native.pubsubStatus();
        state = `${st.resubscribes}:${st.dropped}`;
      } catch {
        state = '';
      }
    }
    const stale = this.linkOf !== null && (this.linkOf !== b || this.linkState !== state);
    if (stale) this.blocks.clear();
    this.linkOf = b;
    this.linkState = state;
    return stale;
  }
}

module.exports = { BlockCache, BlockSync };
