// `@bisman/cache/express-rate-limit`: an express-rate-limit v8 `Store` counting in this
// module's Redis (or memory://) back end, shared by every process on the same Redis.
import type { createCache } from './index';

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

/** An express-rate-limit v8 store. When Redis fails, `increment` rejects within
 * `commandTimeoutMs` and express-rate-limit's `passOnStoreError` decides (false, its default:
 * the error goes to Express's error handler; true: the request passes). `decrement` and
 * `resetKey` never reject for a back-end failure; `get` answers undefined then. */
export declare class RateLimitStore {
  constructor(options?: RateLimitStoreOptions);
  readonly prefix: string;
  readonly localKeys: false;
  /** The window is rounded up to whole seconds; a numeric `limit` is recorded for getIpStatus. */
  init(options: { windowMs: number; limit?: unknown }): void;
  increment(key: string): Promise<RateLimitStoreInfo>;
  decrement(key: string): Promise<void>;
  get(key: string): Promise<RateLimitStoreInfo | undefined>;
  resetKey(key: string): Promise<void>;
}

export default RateLimitStore;
