// `@bisman/cache/express-session`: an express-session `Store` on this module's sessions, so
// `sessionCache.invalidateUserSessions(userId)` ends the user's cookie sessions too.
// The module is CommonJS: `module.exports` is the class, with `SessionStore` and `default`
// naming it too, so `import Store from`, `import { SessionStore } from` and `require()` all give
// the class. Its types extend express-session's `Store` (from @types/express-session).
import { Store, type SessionData } from 'express-session';
import type { createCache } from './index';

/**
 * An express-session store. Each method takes express-session's callback, or, without one,
 * answers a promise. When Redis fails (down, hung past `commandTimeoutMs`, circuit open) every
 * method calls back with the error, `get` included: express-session then calls `next(err)`
 * and the user's cookie and session survive the outage (answering "no session" would make
 * express-session replace the cookie).
 */
declare class SessionStore extends Store {
  /**
   * A store on the module's default cache, or on `options.cache`. Bad options: TypeError or
   * RangeError (`ERR_INVALID_ARG`, `ERR_OUT_OF_RANGE`).
   */
  constructor(options?: SessionStore.SessionStoreOptions);
  /** The sessions' name within the session family (`options.prefix`, default `'sess'`). */
  readonly prefix: string;
  /** The TTL in seconds of a session whose cookie has no expiry (at most 3600). */
  readonly ttlSec: number;
  /** True when `touch` does nothing (`options.disableTouch`). */
  readonly disableTouch: boolean;
  /** The COUNT of each SCAN step of `all`, `length` and `clear` (`options.scanCount`, default 100). */
  readonly scanCount: number;
  /** The bounds of `all`, `length` and `clear`; past one of them they fail instead of answering a part. */
  static readonly SCAN_LIMITS: SessionStore.ScanLimits;
  /** This store's bounds of `all`, `length` and `clear` (SCAN_LIMITS, lowered by `options.scanLimits`). */
  readonly scanLimits: SessionStore.ScanLimits;

  /**
   * The session of `sid`, or null: none, expired, revoked, or a sid that names none (any
   * string is answered, never a throw).
   */
  get(sid: string, callback: (err: any, session?: SessionData | null) => void): void;
  /** The session of `sid`, or null (a promise, without a callback). */
  get(sid: string): Promise<SessionData | null>;
  /**
   * Stores the session for the time its cookie has left (else `ttlSec`), 1 h at most,
   * indexed under its user; a session whose cookie has expired is destroyed instead. A
   * session read before its user's sessions were revoked is not written back.
   */
  set(sid: string, session: SessionData, callback?: (err?: any) => void): void;
  /** `set` as a promise. */
  set(sid: string, session: SessionData): Promise<void>;
  /** Removes the session and its entry in its user's index. */
  destroy(sid: string, callback?: (err?: any) => void): void;
  /** `destroy` as a promise. */
  destroy(sid: string): Promise<void>;
  /** Moves the session's expiry on (PEXPIRE) without rewriting it; a gone session stays gone. */
  touch(sid: string, session: SessionData, callback?: (err?: any) => void): void;
  /** `touch` as a promise. */
  touch(sid: string, session: SessionData): Promise<void>;
  /** Every session of this prefix (by SCAN, within `SCAN_LIMITS`); sids are stored hashed, so none carries an id. */
  all(callback: (err: any, obj?: SessionData[] | { [sid: string]: SessionData } | null) => void): void;
  /** `all` as a promise. */
  all(): Promise<SessionData[]>;
  /** How many sessions this prefix has (by SCAN, within `SCAN_LIMITS`). */
  length(callback: (err: any, length?: number) => void): void;
  /** `length` as a promise. */
  length(): Promise<number>;
  /** Removes every session of this prefix, each as `destroy` does (by SCAN, within `SCAN_LIMITS`). */
  clear(callback?: (err?: any) => void): void;
  /** `clear` as a promise. */
  clear(): Promise<void>;
}

/** The module's other names of the class, and its option types. */
declare namespace SessionStore {
  export import SessionStore = SessionStoreClass;
  /** The class (`require('@bisman/cache/express-session').default`). */
  const _default: typeof SessionStoreClass;
  export { _default as default };

  /** Options of `new SessionStore()`. */
  export interface SessionStoreOptions {
    /** The module (default) or an instance from `createCache()`. */
    cache?: { /** The instance's sessions (where the store keeps its own). */ sessionCache: unknown } | ReturnType<typeof createCache>;
    /** The sessions' name (default 'sess'): keys `session:{prefix}.{sha256(sid)}`; 1 to 64 of `A-Z a-z 0-9 _ -`. */
    prefix?: string;
    /**
     * The TTL in seconds of a session whose cookie has no expiry (default and most 3600, the
     * session family's bound; a larger value is a RangeError `ERR_OUT_OF_RANGE`).
     */
    ttlSec?: number;
    /**
     * The user a session belongs to, for its index (what `invalidateUserSessions` ends); a
     * string or an integer, or null/undefined for none (stored unindexed). Default:
     * `session.userId ?? session.user_id ?? session.passport?.user`.
     */
    userId?: (session: SessionData & Record<string, any>) => string | number | null | undefined;
    /** `touch` does nothing (default false). */
    disableTouch?: boolean;
    /** The COUNT of each SCAN step of `all`, `length` and `clear` (default 100; 1 to 10000). */
    scanCount?: number;
    /** Lower bounds for `all`, `length` and `clear` than `SessionStore.SCAN_LIMITS` (each 1 to its default). */
    scanLimits?: Partial<ScanLimits>;
    /** How a session becomes the stored string and back (default JSON). */
    serializer?: { /** Stored string → session. */ parse(text: string): any; /** Session → stored string. */ stringify(session: any): string };
  }

  /** The bounds of `all`, `length` and `clear`. */
  export interface ScanLimits {
    /** Keys visited in all (SCAN steps × scanCount, every Cluster primary together). */
    readonly maxVisitedKeys: number;
    /** Sessions `all` reads. */
    readonly maxAll: number;
    /** Sessions `length` counts. */
    readonly maxLength: number;
    /** Time one call may take, in ms. */
    readonly timeoutMs: number;
  }
}

import SessionStoreClass = SessionStore;

export = SessionStore;
