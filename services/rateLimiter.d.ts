// `@bisman/cache/services/rateLimiter`: the ERP's old cache/services/rateLimiter.js.
import type { RateLimiter } from '../index';
export { rateLimiter, RateLimiter } from '../index';
export declare const checkLimit: RateLimiter['checkLimit'];
export declare const resetLimit: RateLimiter['resetLimit'];
export declare const resetAllLimitsForIp: RateLimiter['resetAllLimitsForIp'];
export declare const getIpStatus: RateLimiter['getIpStatus'];
export declare const createLimiter: RateLimiter['createLimiter'];
export declare const authLimiter: RateLimiter['authLimiter'];
export declare const strictLimiter: RateLimiter['strictLimiter'];
