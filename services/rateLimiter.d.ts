// `@bisman/cache/services/rateLimiter`: the ERP's old cache/services/rateLimiter.js.
import type { RateLimiter } from '../index';
export { rateLimiter, RateLimiter } from '../index';
/**
 * `rateLimiter.checkLimit`, bound to the singleton (so it can be passed around):
 * see {@link RateLimiter.checkLimit}.
 */
export declare const checkLimit: RateLimiter['checkLimit'];
/**
 * `rateLimiter.resetLimit`, bound to the singleton (so it can be passed around):
 * see {@link RateLimiter.resetLimit}.
 */
export declare const resetLimit: RateLimiter['resetLimit'];
/**
 * `rateLimiter.resetAllLimitsForIp`, bound to the singleton (so it can be passed around):
 * see {@link RateLimiter.resetAllLimitsForIp}.
 */
export declare const resetAllLimitsForIp: RateLimiter['resetAllLimitsForIp'];
/**
 * `rateLimiter.getIpStatus`, bound to the singleton (so it can be passed around):
 * see {@link RateLimiter.getIpStatus}.
 */
export declare const getIpStatus: RateLimiter['getIpStatus'];
/**
 * `rateLimiter.createLimiter`, bound to the singleton (so it can be passed around):
 * see {@link RateLimiter.createLimiter}.
 */
export declare const createLimiter: RateLimiter['createLimiter'];
/**
 * `rateLimiter.authLimiter`, bound to the singleton (so it can be passed around):
 * see {@link RateLimiter.authLimiter}.
 */
export declare const authLimiter: RateLimiter['authLimiter'];
/**
 * `rateLimiter.strictLimiter`, bound to the singleton (so it can be passed around):
 * see {@link RateLimiter.strictLimiter}.
 */
export declare const strictLimiter: RateLimiter['strictLimiter'];
