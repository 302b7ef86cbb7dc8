'use strict';
// One cache instance: the services over one Context, plus health and lifecycle.

const { Context } = require('./context');
const { SessionCache } = require('./session');
const { DistributedLock } = require('./lock');
const { PermissionCache } = require('./permissions');
const { PubSub } = require('./pubsub');
const { GeneralCache } = require('./general_cache');
const { RateLimiter, parseRateLimits, parseInsurance, parseIpv6Subnet } = require('./rate_limit');
const keys = require('./keys');
const { EventEmitter } = require('events');
const { metrics, collect, CONTENT_TYPE } = require('./metrics');
const { attachEvents } = require('./events');
const { instrument } = require('./tracing');
const { debug, describeTarget } = require('./debug');
const replies = require('./replies');

// An EventEmitter: 'error', 'circuit' and 'reconnect' for logging (see lib/events.js).
// The whole cache's circuit ('closed' before any back end was made): the one server's breaker,
// or on Cluster and Sentinel the aggregate of the data nodes' ('degraded' while some are open
// and others closed; 'open' only once all are).
function circuitOf(ctx) {
  const b = ctx.bridgeInstance;
  return b === null ? 'closed' : b.native.circuitState();
}

// Cluster and Sentinel have several data nodes: ping() and metrics() report each.
function hasNodes(options) {
  return options.cluster !== undefined || options.sentinel !== undefined;
}

// PING on every primary of a cluster (the slot map read again first) or on the primary behind
// sentinels, concurrently, each past and feeding its node's own breaker → [{ address, role,
// pong, ms, circuit, error? }]; [] when none could be listed (the overall answer's error says
// why).
function pingNodes(ctx) {
  return ctx.op(
    (n, id) => n.pingNodes(id),
    replies.pingNodes,
    () => [],
  );
}

class Cache extends EventEmitter {
  // `lazy`: validate and build the native side on first use (the module's default instance,
  // created at require time from REDIS_URL); otherwise now, so bad options throw here.
  constructor(options, { lazy = false } = {}) {
    super();
    const rateLimits = parseRateLimits(options && options.rateLimits);
    parseInsurance(options && options.rateLimitInsurance); // validated now
    parseIpv6Subnet(options && options.ipv6Subnet);
    this.ctx = new Context(options);
    if (!lazy) this.ctx.ensureBridge();
    attachEvents(this);
    this.sessionCache = new SessionCache(this.ctx);
    this.distributedLock = new DistributedLock(this.ctx);
    this.permissionCache = new PermissionCache(this.ctx);
    this.pubsub = new PubSub(this.ctx);
    this.rateLimiter = new RateLimiter(this.ctx, rateLimits, this.pubsub);
    this.generalCache = new GeneralCache(this.ctx, this.pubsub);
    instrument(this);
    debug('cache created for %s', describeTarget(this.ctx.options));
  }

  // The top-level session shortcuts of the module, on every instance.
  getSessionWithFallback(token) {
    return this.sessionCache.getSessionWithFallback(token);
  }

  invalidateSession(tokenHash) {
    return this.sessionCache.invalidateSession(tokenHash);
  }

  // The general cache (lib/general_cache/, docs/cache.md).
  get(key) {
    return this.generalCache.get(key);
  }

  set(key, value, opts) {
    return this.generalCache.set(key, value, opts);
  }

  del(keyOrKeys) {
    return this.generalCache.del(keyOrKeys);
  }

  wrap(key, loader, opts) {
    return this.generalCache.wrap(key, loader, opts);
  }

  // Replaces the configuration (and reconnects). Throws TypeError/RangeError on bad options.
  configure(options) {
    const rateLimits = parseRateLimits(options && options.rateLimits); // validated before the swap
    const insured = parseInsurance(options && options.rateLimitInsurance);
    const ipv6Subnet = parseIpv6Subnet(options && options.ipv6Subnet);
    this.ctx.reconfigure(options);
    debug('reconfigured for %s (the previous connection is closed)', describeTarget(this.ctx.options));
    // A subscription follows the instance to its new back end.
    if (this.pubsub.wanted) this.pubsub.subscribe().catch(() => {});
    this.rateLimiter.setLimits(rateLimits);
    this.rateLimiter.setInsurance(insured);
    this.rateLimiter.setIpv6Subnet(ipv6Subnet);
    return this;
  }

  // → { pong: 'PONG', ms, enabled: true, circuit } or { pong: null, ms, enabled: false, error,
  // circuit }; on Cluster and Sentinel also `nodes`: [{ address, role, pong, ms, circuit, error? }],
  // one PING per primary (see pingNodes). PING always goes to Redis, even while a circuit breaker
  // is open (its success closes it); `circuit` is 'closed' | 'open' | 'half-open' | 'degraded'
  // after it (see circuitOf).
  // Revocations pending replay (lib/journal.js) are replayed first (waited for at most
  // 2 × commandTimeoutMs); while some are still pending the answer is { pong: null, ms,
  // enabled: false, error: 'revocations pending replay', circuit, pendingRevocations }.
  ping() {
    const started = process.hrtime.bigint();
    const ms = () => Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;
    const circuit = () => circuitOf(this.ctx);
    const one = () =>
      this.ctx.op(
        (n, id) => n.ping(id),
        (pong) => ({ pong, ms: ms(), enabled: true, circuit: circuit() }),
        (err) => ({ pong: null, ms: ms(), enabled: false, error: err.message, circuit: circuit() }),
      );
    const probe = () => (hasNodes(this.ctx.options) ? Promise.all([one(), pingNodes(this.ctx)]).then(([r, nodes]) => ({ ...r, nodes })) : one());
    const j = this.ctx.journal;
    if (j.size !== 0) {
      try {
        this.ctx.ensureBridge(); // (re)connects a shut-down instance, which resumes the replay
      } catch (err) {
        return Promise.reject(err);
      }
      const wait = 2 * (this.ctx.options.commandTimeoutMs || 1000);
      let timer;
      const bound = new Promise((resolve) => {
        timer = setTimeout(resolve, wait, false);
        timer.unref();
      });
      return Promise.race([j.flush(), bound]).then((clean) => {
        clearTimeout(timer);
        if (clean) return probe();
        return { pong: null, ms: ms(), enabled: false, error: 'revocations pending replay', circuit: circuit(), pendingRevocations: j.count };
      });
    }
    return probe();
  }

  // Sync: false while disabled, while Redis is known to be down, or while revocations are
  // pending replay (lib/journal.js).
  isEnabled() {
    return this.ctx.bridge.native.isEnabled() && this.ctx.journal.size === 0;
  }

  stats() {
    const out = JSON.parse(JSON.stringify(this.ctx.stats));
    const b = this.ctx.bridgeInstance;
    out.inFlight = b === null ? 0 : b.inFlight;
    out.enabled = b === null ? false : b.native.isEnabled() && this.ctx.journal.size === 0;
    out.circuit = circuitOf(this.ctx);
    out.revocation = this.ctx.journal.stats();
    return out;
  }

  // Prometheus text of this instance's counters (see lib/metrics.js and the README).
  metrics() {
    return metrics(this);
  }

  // The same counters as data: [{ name, type, help, labelNames, samples: [[suffix, labels, value]] }].
  collectMetrics() {
    return collect(this).map(({ name, type, help, labelNames, samples }) => ({ name, type, help, labelNames, samples }));
  }

  // Closes every connection; afterwards nothing of this instance keeps Node alive. A later
  // call connects again.
  shutdown() {
    this.ctx.shutdown();
    debug('shut down: connections closed');
    return Promise.resolve();
  }
}

// Key builders and hashToken are the same pure functions on every instance.
Object.assign(Cache.prototype, keys);

Cache.prototype.metricsContentType = CONTENT_TYPE;

module.exports = { Cache };
