// `@bisman/cache/express-rate-limit`: an express-rate-limit v8 `Store` counting in this
// module's Redis (or memory://) back end, shared by every process on the same Redis.
// The module is CommonJS: `module.exports` is the class, with `RateLimitStore` and `default`
// naming it too, so `import Store from`, `import { RateLimitStore } from` and `require()` all
// give the class.
import type { createCache } from './index';

/**
 * An express-rate-limit v8 store. When Redis fails, `increment` rejects within
 * `commandTimeoutMs` and express-rate-limit's `passOnStoreError` decides (false, its default:
 * the error goes to Express's error handler; true: the request passes). `decrement` and
 * `resetKey` never reject for a back-end failure; `get` answers undefined then.
 */
declare class RateLimitStore {
  constructor(options?: RateLimitStore.RateLimitStoreOptions);
  readonly prefix: string;
  readonly localKeys: false;
  /** The window is rounded up to whole seconds; a numeric `limit` is recorded for getIpStatus. */
  init(options: { windowMs: number; limit?: unknown }): void;
  increment(key: string): Promise<RateLimitStore.RateLimitStoreInfo>;
  decrement(key: string): Promise<void>;
  get(key: string): Promise<RateLimitStore.RateLimitStoreInfo | undefined>;
  resetKey(key: string): Promise<void>;
}

declare namespace RateLimitStore {
  export import RateLimitStore = RateLimitStoreClass;
  const _default: typeof RateLimitStoreClass;
  export { _default as default };

  export interface RateLimitStoreOptions {
    /** The module (default) or an instance from `createCache()`. */
    cache?: { rateLimiter: unknown } | ReturnType<typeof createCache>;
    /** The counter's name (default 'erl'): one per express-rate-limit limiter; 1 to 64 of
     * `A-Z a-z 0-9 _ . : -`. */
    prefix?: string;
  }

  export interface RateLimitStoreInfo {
    totalHits: number;
    resetTime: Date | undefined;
  }
}

import RateLimitStoreClass = RateLimitStore;

export = RateLimitStore;
