// ESM entry of @bisman/cache: the same singletons as `require('@bisman/cache')` (this file
// wraps the CommonJS module, so `import` and `require` share one instance).
//   import cache, { rateLimiter } from '@bisman/cache';
import cache from './index.js';

export default cache;
export const {
  sessionCache,
  distributedLock,
  permissionCache,
  pubsub,
  rateLimiter,
  configure,
  createCache,
  ping,
  isEnabled,
  stats,
  metrics,
  collectMetrics,
  metricsContentType,
  on,
  once,
  off,
  shutdown,
  getSessionWithFallback,
  invalidateSession,
  get,
  set,
  del,
  wrap,
  sessionKey,
  sessionUserKey,
  permUserKey,
  permRoleKey,
  rateKey,
  lockKey,
  hashToken,
  Cache,
  SessionCache,
  DistributedLock,
  PermissionCache,
  PubSub,
  RateLimiter,
} = cache;
