'use strict';
// @bisman/cache: the hand-written façade. `require('@bisman/cache')` gives the same names the
// ERP's old `cache/index.js` exported, backed by the native core.

const { Cache } = require('./lib/cache');
const { SessionCache } = require('./lib/session');
const { DistributedLock } = require('./lib/lock');
const { PermissionCache } = require('./lib/permissions');
const { PubSub } = require('./lib/pubsub');
const { RateLimiter } = require('./lib/rate_limit');
const keys = require('./lib/keys');

// The singletons live on one default instance, configured from REDIS_URL unless configure()
// is called; configure() swaps its back end under the same objects.
const defaultCache = new Cache({}, { lazy: true });

module.exports = {
  sessionCache: defaultCache.sessionCache,
  distributedLock: defaultCache.distributedLock,
  permissionCache: defaultCache.permissionCache,
  pubsub: defaultCache.pubsub,
  rateLimiter: defaultCache.rateLimiter,

  configure: (options) => {
    defaultCache.configure(options);
  },
  createCache: (options) => new Cache(options),
  ping: () => defaultCache.ping(),
  isEnabled: () => defaultCache.isEnabled(),
  stats: () => defaultCache.stats(),
  metrics: () => defaultCache.metrics(),
  collectMetrics: () => defaultCache.collectMetrics(),
  metricsContentType: defaultCache.metricsContentType,
  shutdown: () => defaultCache.shutdown(),
  // Events of the default instance: 'error' (err, service), 'circuit' ({ state }), 'reconnect'.
  on: (event, listener) => {
    defaultCache.on(event, listener);
    return module.exports;
  },
  once: (event, listener) => {
    defaultCache.once(event, listener);
    return module.exports;
  },
  off: (event, listener) => {
    defaultCache.off(event, listener);
    return module.exports;
  },
  getSessionWithFallback: (token) => defaultCache.getSessionWithFallback(token),
  invalidateSession: (tokenHash) => defaultCache.invalidateSession(tokenHash),
  // The general cache (docs/cache.md).
  get: (key) => defaultCache.get(key),
  set: (key, value, opts) => defaultCache.set(key, value, opts),
  del: (keyOrKeys) => defaultCache.del(keyOrKeys),
  wrap: (key, loader, opts) => defaultCache.wrap(key, loader, opts),
  ...keys,

  Cache,
  SessionCache,
  DistributedLock,
  PermissionCache,
  PubSub,
  RateLimiter,
};
