// `@bisman/cache/admin`: an operator's page for the cache, mounted behind the app's own admin
// check. See docs/admin.md.
import type { IncomingMessage, ServerResponse } from 'http';

/** The part of a cache the router uses: the module or any `createCache()` instance. */
export type AdminCache = Pick<
  import('./index').Cache,
  'ping' | 'isEnabled' | 'stats' | 'on' | 'off' | 'invalidateSession' | 'sessionCache' | 'rateLimiter' | 'distributedLock'
> &
  Partial<Pick<import('./index').Cache, 'permissionCache' | 'pubsub'>>;

export interface AdminRouterOptions<Req extends IncomingMessage = IncomingMessage> {
  /**
   * The app's own admin check, asked on every request (page, script, API, event stream) and
   * every 5 s of a live stream. Only `true` lets the request through; `false` (or any other
   * value) answers 401 JSON when the request carries no `Authorization` and no `Cookie`
   * header, else 403 JSON; a throw or rejection answers 500 JSON. Required: without it the
   * router is not created (TypeError, `code: 'ERR_INVALID_ARG'`).
   */
  authorize: (req: Req) => boolean | Promise<boolean>;
  /** Default: the module's default instance. */
  cache?: AdminCache;
  /**
   * The mount path, e.g. `'/admin'`. Under Express it is read from `req.baseUrl`; give it when
   * the router is called from a plain `http` server (it then strips it from `req.url` and
   * passes other paths to `next`).
   */
  basePath?: string;
  /** Live streams served at once (1–100, default 4); more are answered 503. */
  maxClients?: number;
  /**
   * Deletes the app's own record of a session (its database row) before "revoke" removes the
   * cache's copy; without it the session loader may fill the cache again from the database.
   * A throw answers 500 and leaves the cache as it is.
   */
  deleteSession?: (tokenHash: string) => unknown;
  /** The same for "revoke all sessions of a user". */
  deleteUserSessions?: (userId: string) => unknown;
}

/**
 * A request handler to mount with `app.use('/admin', router)` (Express 4 or 5), or to call as
 * `router(req, res, next)` from a plain `http` server with `basePath`.
 */
export interface AdminRouter {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** Ends every live stream and stops recording the cache's errors. */
  close(): void;
}

/**
 * The operator's page: health and circuit, hit / miss / fallback rates, the near cache, a
 * user's sessions (revoke one or all), an address's rate limits (reset), a lock's holder, the
 * last 50 back-end errors. Every action is a POST with a JSON body from the page's own origin.
 * Throws a TypeError (`code: 'ERR_INVALID_ARG'`) without an `authorize` function, or when
 * `cache`, `basePath`, `deleteSession` or `deleteUserSessions` is not what it should be; a
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for `maxClients` out of range.
 */
export declare function adminRouter<Req extends IncomingMessage = IncomingMessage>(options: AdminRouterOptions<Req>): AdminRouter;
