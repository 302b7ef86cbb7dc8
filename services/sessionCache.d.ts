// `@bisman/cache/services/sessionCache`: the ERP's old cache/services/sessionCache.js.
import type { SessionCache } from '../index';
export { sessionCache, SessionCache } from '../index';
export declare const setSession: SessionCache['setSession'];
export declare const getSession: SessionCache['getSession'];
export declare const getSessionWithFallback: SessionCache['getSessionWithFallback'];
export declare const invalidateSession: SessionCache['invalidateSession'];
export declare const invalidateUserSessions: SessionCache['invalidateUserSessions'];
export declare const getUserSessions: SessionCache['getUserSessions'];
