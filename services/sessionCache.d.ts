// `@bisman/cache/services/sessionCache`: the ERP's old cache/services/sessionCache.js.
import type { SessionCache } from '../index';
export { sessionCache, SessionCache } from '../index';
/**
 * `sessionCache.setSession`, bound to the singleton (so it can be passed around):
 * see {@link SessionCache.setSession}.
 */
export declare const setSession: SessionCache['setSession'];
/**
 * `sessionCache.getSession`, bound to the singleton (so it can be passed around):
 * see {@link SessionCache.getSession}.
 */
export declare const getSession: SessionCache['getSession'];
/**
 * `sessionCache.getSessionWithFallback`, bound to the singleton (so it can be passed around):
 * see {@link SessionCache.getSessionWithFallback}.
 */
export declare const getSessionWithFallback: SessionCache['getSessionWithFallback'];
/**
 * `sessionCache.invalidateSession`, bound to the singleton (so it can be passed around):
 * see {@link SessionCache.invalidateSession}.
 */
export declare const invalidateSession: SessionCache['invalidateSession'];
/**
 * `sessionCache.invalidateUserSessions`, bound to the singleton (so it can be passed around):
 * see {@link SessionCache.invalidateUserSessions}.
 */
export declare const invalidateUserSessions: SessionCache['invalidateUserSessions'];
/**
 * `sessionCache.getUserSessions`, bound to the singleton (so it can be passed around):
 * see {@link SessionCache.getUserSessions}.
 */
export declare const getUserSessions: SessionCache['getUserSessions'];
