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
  /**
   * A store on the module's default cache, or on `options.cache`. Bad options: TypeError
   * (`ERR_INVALID_ARG`).
   */
  constructor(options?: RateLimitStore.RateLimitStoreOptions);
  /** The counter's name (`options.prefix`, default `'erl'`). */
  readonly prefix: string;
  /** The counts live in Redis, shared by every process. */
  readonly localKeys: false;
  /** The window is rounded up to whole seconds; a numeric `limit` is recorded for getIpStatus. */
  init(options: { windowMs: number; limit?: unknown }): void;
  /**
   * Counts a hit of `key` → the hits in the window and when it ends. Rejects (within
   * `commandTimeoutMs`) when Redis fails.
   */
  increment(key: string): Promise<RateLimitStore.RateLimitStoreInfo>;
  /**
   * Takes back a hit of `key` (skipSuccessfulRequests/skipFailedRequests); never rejects for a
   * back-end failure.
   */
  decrement(key: string): Promise<void>;
  /** The hits of `key` without counting; undefined when there are none or Redis failed. */
  get(key: string): Promise<RateLimitStore.RateLimitStoreInfo | undefined>;
  /** Forgets `key`'s hits; never rejects for a back-end failure. */
  resetKey(key: string): Promise<void>;
}

/** The module's other names of the class, and its option and result types. */
declare namespace RateLimitStore {
  export import RateLimitStore = RateLimitStoreClass;
  /** The class (`require('@bisman/cache/express-rate-limit').default`). */
  const _default: typeof RateLimitStoreClass;
  export { _default as default };

  /** Options of `new RateLimitStore()`. */
  export interface RateLimitStoreOptions {
    /** The module (default) or an instance from `createCache()`. */
    cache?: { /** The instance's rate limiter (read to count). */ rateLimiter: unknown } | ReturnType<typeof createCache>;
    /** The counter's name (default 'erl'): one per express-rate-limit limiter; 1 to 64 of
     * `A-Z a-z 0-9 _ . : -`. */
    prefix?: string;
  }

  /** What `increment` and `get` answer. */
  export interface RateLimitStoreInfo {
    /** Hits in the current window. */
    totalHits: number;
    /** When the window ends (undefined when unknown). */
    resetTime: Date | undefined;
  }
}

import RateLimitStoreClass = RateLimitStore;

export = RateLimitStore;
