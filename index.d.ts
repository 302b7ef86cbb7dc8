// Type declarations of @bisman/cache (hand-written façade over the generated binding.d.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
// `@types/express` is optional. With it, the middleware and its callbacks take Express's
// `Request` and `Response`; without it these imports do not resolve (the directive silences
// the missing module) and the structural `HttpRequest`/`ServerResponse` below apply instead.
// @ts-ignore
import type { Request as ExpressRequestIfInstalled, Response as ExpressResponseIfInstalled } from 'express';

/**
 * A session as stored under `session:{tokenHash}`: JSON, any fields; `expires_at` (or `expiresAt`)
 * bounds its life in the cache.
 */
export interface SessionData {
  /**
   * The user the session belongs to: it joins `session:user:{userId}` (for
   * `invalidateUserSessions`).
   */
  user_id?: string | number;
  /** Same as `user_id` (either spelling is read). */
  userId?: string | number;
  /**
   * When the session ends (ISO string, epoch ms or Date): the cache entry expires then; one already
   * past is not stored.
   */
  expires_at?: string | number | Date;
  /** Same as `expires_at` (either spelling is read). */
  expiresAt?: string | number | Date;
  /** Any other JSON field is stored and returned as given. */
  [field: string]: unknown;
}

/** Where an answer came from: the cache (near cache or Redis) or the database loader. */
export type Source = 'cache' | 'database';
/**
 * An id or resource name: a number, or a non-empty string without whitespace, control or glob
 * characters (`* ? [ ]`), at most 512 bytes; else a TypeError/RangeError
 * (`ERR_INVALID_ARG`/`ERR_VALUE_TOO_LARGE`).
 */
export type Id = string | number;

/**
 * The database lookups behind the `…WithFallback` calls (and the permission checks on a miss). Each
 * may answer a value or a promise; a throw or rejection is the caller's rejection.
 */
export interface Loaders {
  /** The database lookup of a raw session token; null when there is no such session. */
  session?: (token: string) => Promise<SessionData | null> | SessionData | null;
  /** The database lookup of a user's permissions snapshot; null when there is none. */
  userPermissions?: (userId: Id, role?: Id) => Promise<PermissionSnapshot | null> | PermissionSnapshot | null;
  /** The database lookup of a role's permissions snapshot; null when there is none. */
  rolePermissions?: (roleId: Id) => Promise<PermissionSnapshot | null> | PermissionSnapshot | null;
}

/** `'*'` in `modules` grants every module; `'*'` in a page's list every action on that page. */
export interface PermissionSnapshot {
  /** The user's role; a role in `superRoles` (default `SUPER_ADMIN`) grants every module and page. */
  role?: string | number;
  /** Modules granted, e.g. `['INVENTORY', 'FINANCE']`. */
  modules?: string[];
  /** Actions granted by page, e.g. `{ 'inventory-items': ['view', 'edit'] }`. */
  pages?: {
    /** The actions granted on `page` (`'*'`: every action). */
    [page: string]: string[];
  };
  /** Any other JSON field is stored and returned as given. */
  [field: string]: unknown;
}

/** The `tls` option (a `rediss://` URL, `rediss://` cluster seeds, or the data nodes behind
 * Sentinel) and the `sentinelTls` option (`rediss://` sentinels). Every PEM is a string or
 * Buffer, or the path of a PEM file; a bad value is a `TypeError` with `code`
 * `ERR_INVALID_ARG`. */
export interface TlsOptions {
  /** The CA that signs the server's certificate: then the only root trusted. Without it the
   * public web PKI roots are trusted. */
  ca?: string | Buffer;
  /** Client certificate (chain) for mutual TLS; needs `key`. */
  cert?: string | Buffer;
  /** Private key of `cert` (unencrypted PEM: PKCS#8, PKCS#1 or SEC1); needs `cert`. */
  key?: string | Buffer;
  /** Name sent (SNI) and checked against the server's certificate (a DNS name or an IP
   * address); default the host the server is reached by: the URL's, or on Cluster and behind
   * Sentinel the host (often an IP address) the cluster or the sentinels name. */
  servername?: string;
  /** Default true. `false` accepts ANY server certificate (self-signed, wrong name, expired):
   * for tests only — it gives up the protection TLS exists for. */
  rejectUnauthorized?: boolean;
}

/**
 * Options of `configure()` and `createCache()`; every field is optional. A bad value is a TypeError
 * or RangeError with a `code` (`ERR_INVALID_ARG`), and nothing changes.
 */
export interface CacheOptions {
  /** `redis://…`, `rediss://…`, `unix:///path` or `redis+unix:///path` (`?db=`, `?user=`,
   * `?pass=`), `memory://[name]`; default `process.env.REDIS_URL`; unset: disabled. */
  url?: string;
  /** Redis Cluster: seed node URLs `['redis://h:7000', …]` (instead of `url`), all `redis://`
   * or all `rediss://`; `rediss://` seeds put every node's connection on TLS (the `tls`
   * settings), the nodes learnt from the cluster included. */
  cluster?: string[];
  /** Redis Sentinel: the monitored primary's name and the sentinels' URLs (instead of `url`). */
  sentinel?: {
    /** The name the sentinels monitor the primary under (`sentinel monitor <name> …`). */
    masterName: string;
    /** The sentinels' URLs, `['redis://h:26379', …]`, all `redis://` or all `rediss://`
     * (the sentinels over TLS, with `sentinelTls`, else `tls`). */
    nodes: string[];
  };
  /** The ACL user of every data connection (`AUTH user pass`), replacing the URL's; on Cluster
   * every node's, behind Sentinel the data nodes'. Needs a password (`password` or the URL's).
   * `''` counts as not given. */
  username?: string;
  /** The password of every data connection, replacing the URL's (on Cluster every node's,
   * behind Sentinel the data nodes'); `''` counts as not given. Never shown in an error, a log
   * line, `stats()` or `metrics()`. Checked, then ignored, with `memory://`. */
  password?: string;
  /** The database selected on every connection (`SELECT`), replacing the URL's `/db`;
   * 0 … 2147483647 (Redis' own limit is its `databases` setting, 16 by default); only 0 on
   * Redis Cluster. */
  db?: number;
  /** `CLIENT SETNAME` on every connection (`CLIENT LIST` shows it); the pub/sub subscriber's
   * is `<name>:sub`. 1 … 128 printable ASCII characters without spaces. A least-privilege ACL
   * user needs `+client|setname`. */
  connectionName?: string;
  /** The sentinels' own ACL user (with `sentinel` only), replacing the sentinel URLs'; needs
   * `sentinelPassword`. */
  sentinelUsername?: string;
  /** The sentinels' own password (with `sentinel` only), replacing the sentinel URLs'; never
   * shown. */
  sentinelPassword?: string;
  /** Prepended to every key, e.g. `'erp:prod:'`. */
  keyPrefix?: string;
  /** Names this node in lock owners and pub/sub messages (default: the host name). */
  nodeId?: string;
  /** No call waits on Redis longer than this (default 1000). */
  commandTimeoutMs?: number;
  /** Default 2000. */
  connectTimeoutMs?: number;
  /** Largest value stored, in bytes (default 512 KiB). */
  maxValueBytes?: number;
  /** Bytes of commands queued for Redis and not yet written, 65536 … 1 GiB (default 32 MiB);
   * a call that finds the outbox full (Redis not reading) fails at once with
   * `ECACHEUNAVAILABLE` and falls back. */
  maxOutboxBytes?: number;
  /** Longest reply accepted from Redis, 1024 … 512 MiB and at least `maxValueBytes` and
   * `maxMessageBytes` (default 512 MiB, Redis' `proto-max-bulk-len`); a longer one drops the
   * connection (`ECACHEUNAVAILABLE`; the subscriber's link reconnects). */
  maxReplyBytes?: number;
  /** Circuit breaker: consecutive timeouts/connection errors after which Redis is skipped
   * (calls fail at once with `ECIRCUITOPEN` and fall back) — default 5; 0 disables it. */
  circuitThreshold?: number;
  /** How long Redis is skipped once the circuit opens, before one probe (default 1000). */
  circuitCooldownMs?: number;
  /** Endpoints whose limits hold per process while Redis is down (the in-process "insurance"
   * limiter): `true` (default) = `/api/auth/login`, `/api/auth/register`, `/api/otp/send`;
   * `false` = none (plain fail-open); or an array of endpoints. */
  rateLimitInsurance?: boolean | string[];
  /** Rate limits count an IPv6 client under its prefix of this length, 1 … 128 (default 56,
   * as express-rate-limit: `2001:db8:0:ab00::/56`); `false` counts each address. Addresses are
   * normalised first (`::ffff:1.2.3.4` → `1.2.3.4`; brackets, zones and ports dropped). */
  ipv6Subnet?: number | false;
  /** TLS settings of the data connections. With `url`: `rediss://` only (refused with a
   * `TypeError` with any other URL). With `cluster`: `rediss://` seeds only; every node uses
   * them. With `sentinel`: the data nodes (primary and subscriber) use TLS when this is given
   * (even `{}`) or the sentinels' URLs are `rediss://`; the sentinels use these settings too
   * unless `sentinelTls` is given. TLS never falls back to plaintext. */
  tls?: TlsOptions;
  /** The sentinels' own TLS settings (with `sentinel` and `rediss://` sentinel URLs only,
   * else a `TypeError` `ERR_INVALID_ARG`); default `tls`. They never apply to the data
   * nodes. */
  sentinelTls?: TlsOptions;
  /** The database lookups used on a cache miss (see {@link Loaders}). */
  loaders?: Loaders;
  /** Near cache of permission snapshots: TTL in ms, 0 … 60000 (default 5000; 0 disables). */
  nearCacheTtlMs?: number;
  /** Most snapshots held near (default 10000); the oldest are evicted first. */
  nearCacheMax?: number;
  /** Roles that grant every module and page (default `['SUPER_ADMIN']`). */
  superRoles?: string[];
  /** Revocations kept while Redis refuses them, replayed when it answers (default 10000;
   * 0 … 1000000). Until the replay this node treats them as revoked and `isEnabled()` is
   * false; one that does not fit is counted (`stats().revocation.journalOverflow`) and this node
   * skips the cache for every session and permission read until the replay. */
  revocationJournalMax?: number;
  /** Largest pub/sub message sent or accepted, in bytes, signature included: 1024 … 16 MiB
   * (default 65536). A larger publish is refused with a `RangeError` (`ERR_VALUE_TOO_LARGE`),
   * nothing sent; a larger message received is dropped and counted
   * (`stats().pubsub.rejected.oversize`). */
  maxMessageBytes?: number;
  /** Signs every pub/sub message (HMAC-SHA256) and drops unsigned or badly signed ones
   * (counted in `stats().pubsub.rejected`). One secret, or two for rotation: the first signs,
   * either verifies. Each 16 … 4096 bytes. */
  pubsubSecret?: string | [string] | [string, string];
  /** Limits by endpoint, merged over the defaults (login 5/60 s, register 3/60 s,
   * `/api/otp/send` 3/60 s, `/api/payments` 30/60 s, `default` 100/60 s). */
  rateLimits?: RateLimits;
}

/** One limit: at most `max` hits per fixed window of `windowSec` seconds. */
export interface RateLimit {
  /** Hits allowed per window (whole number, 0 … 1e9). */
  max: number;
  /** Window length in whole seconds (1 … 604800). */
  windowSec: number;
}

/** Limits by endpoint path (`'/api/auth/login'`), and `default` for every other endpoint. */
export interface RateLimits {
  /** The limit of every endpoint not listed (default 100 per 60 s). */
  default?: RateLimit;
  /** The limit of this endpoint path. */
  [endpoint: string]: RateLimit | undefined;
}

/** The answer of `checkLimit` (and `req.rateLimit` under the middleware). */
export interface RateLimitResult {
  /** Whether this hit is within the limit (true too when Redis failed: fail-open, `total` 0). */
  allowed: boolean;
  /** Hits left in this window after this one (0 when blocked). */
  remaining: number;
  /** Whole seconds until the window ends. */
  resetIn: number;
  /** Hits in this window, this one included. */
  total: number;
  /** The limit of the window (`max`). */
  limit: number;
}

/** One live counter of `getIpStatus`. */
export interface IpLimitStatus {
  /** Hits counted in the current window. */
  current: number;
  /** The limit of the window. */
  limit: number;
  /** Whole seconds until the window ends. */
  resetIn: number;
}

/** A shape no real type has: an import that did not resolve (an error type, assignable to
 * everything) is the only thing that matches it. */
interface Unresolved {
  /** A property no real type declares. */
  readonly __bismanCacheUnresolvedImport: never;
}

/**
 * The request as the middleware reads it without `@types/express`: a node:http request with the
 * fields Express adds, each read only when present (`ip` is the client address the limits count;
 * without it the socket's address is used).
 */
export interface HttpRequest extends IncomingMessage {
  /** The client address (Express: decided by `trust proxy`). */
  ip?: string;
  /** The request path without the query string (Express); else taken from `url`. */
  path?: string;
  /** The parsed body, read by `rateLimiter.keys.usernameAndIp(field)`. */
  body?: unknown;
  /** The parsed query string, read by `rateLimiter.keys.usernameAndIp(field)` after `body`. */
  query?: unknown;
  /** Set by the middleware on every counted request. */
  rateLimit?: RateLimitResult;
}

/** Express's `Request` when `@types/express` is installed, else {@link HttpRequest}. */
export type MiddlewareRequest = { t: ExpressRequestIfInstalled } extends { t: Unresolved } ? HttpRequest : ExpressRequestIfInstalled;

/** Express's `Response` when `@types/express` is installed, else node:http's `ServerResponse`. */
export type MiddlewareResponse = { t: ExpressResponseIfInstalled } extends { t: Unresolved } ? ServerResponse : ExpressResponseIfInstalled;

/** The middleware's `next`: called with no argument to pass the request on, with an error to hand
 * it to Express's error handler. */
export type NextFunction = (err?: unknown) => void;

/**
 * `(req, res, next)`: Express middleware (an Express `RequestHandler`); it also works on plain
 * node:http requests. It answers nothing (it calls `next()`, `next(err)` or responds 429/503).
 * It sets `req.rateLimit` (a {@link RateLimitResult}) and the headers `RateLimit-Policy`
 * (`5;w=60`), `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` on every counted
 * response.
 *
 * @example
 * router.post('/login', rateLimiter.authLimiter, authController.login);
 */
export type RateLimitMiddleware = (req: MiddlewareRequest | HttpRequest, res: MiddlewareResponse | ServerResponse, next: NextFunction) => void;

/**
 * Options of `rateLimiter.createLimiter()`. A bad value is a TypeError or RangeError
 * (`ERR_INVALID_ARG`) from `createLimiter`, never from a request.
 */
export interface CreateLimiterOptions {
  /** A fixed limit for this middleware (default 100 when only windowSec is given), or a
   * function `(req) → number | Promise<number>` read per request (0 to the native maximum; an
   * invalid answer goes to Express's error handler). Without max and windowSec, each endpoint's
   * limit comes from `rateLimits`. */
  max?: number | ((req: MiddlewareRequest) => number | Promise<number>);
  /** Default 60. */
  windowSec?: number;
  /** The limiter's own bucket (1 to 64 of `A-Z a-z 0-9 _ . : -`): every path it guards shares
   * one budget, counter `@{name}` (`resetLimit(ip, '@name')`). Without a name each path has its
   * own counter (`{endpoint}` or `{endpoint}#{max}per{windowSec}s`). */
  name?: string;
  /** With `name`: one budget per path (`@{name}{endpoint}`) instead of one for the limiter.
   * Without `name` counting is always per path (`false` is refused). */
  perPath?: boolean;
  /** The client key (default `req.ip`, so Express's `trust proxy` decides); see
   * `rateLimiter.keys.usernameAndIp` for login limits. */
  keyGenerator?: (req: MiddlewareRequest) => string | number | Promise<string | number>;
  /** Count the hit, then take it back when the response finishes successful
   * (`requestWasSuccessful`), e.g. a login limit that counts only failed attempts. */
  skipSuccessfulRequests?: boolean;
  /** Count the hit, then take it back when the response finishes failed (or the connection
   * closes before it finishes). */
  skipFailedRequests?: boolean;
  /** Whether a finished response counts as successful (default: status < 400). */
  requestWasSuccessful?: (req: MiddlewareRequest, res: MiddlewareResponse) => boolean | Promise<boolean>;
  /** Once over the limit, the client stays blocked this many seconds (stored in Redis: every
   * process sees the lockout; it never shortens the window). */
  blockDurationSec?: number;
  /** The RateLimit header set, as express-rate-limit v8 formats it (default 'draft-6'; true is
   * 'draft-6'; false sends none). */
  standardHeaders?: 'draft-6' | 'draft-7' | 'draft-8' | boolean;
  /** Also send X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (default false). */
  legacyHeaders?: boolean;
  /** While Redis fails, count this limiter's hits in an in-process window (the "insurance"
   * limiter: each process stays within `max`) instead of failing open (default false; always on
   * for `authLimiter`/`strictLimiter` and the endpoints of `rateLimitInsurance`). */
  insured?: boolean;
  /** Answer 503 instead of letting requests pass when Redis fails (default false: fail-open). */
  failClosed?: boolean;
  /** True (or a promise of true) lets the request through uncounted, without headers. */
  skip?: (req: MiddlewareRequest, res: MiddlewareResponse) => boolean | Promise<boolean>;
  /** Answers a blocked request instead of the 429 JSON (headers and Retry-After are already set;
   * `req.rateLimit` holds the result). */
  handler?: (req: MiddlewareRequest, res: MiddlewareResponse, next: NextFunction, options: RateLimitHandlerOptions) => unknown;
  /** The 429 body instead of `{ error: 'Too many requests', retryAfter }`: a string is sent as
   * text, anything else as JSON; a function computes it. */
  message?: unknown | ((req: MiddlewareRequest, res: MiddlewareResponse) => unknown | Promise<unknown>);
}

/** Key generators for `createLimiter({ keyGenerator })`. */
export interface RateLimitKeys {
  /** "username + IP" login limits: `field` names the body (then query) field holding the
   * username, or a function reads it. The key is `u~{hash of the username, NFKC, trimmed,
   * lower-cased}~{the client's address bucket}`: any input (huge, odd characters, not a string)
   * gives a short key and never an exception. */
  usernameAndIp(field: string | ((req: MiddlewareRequest) => unknown)): (req: MiddlewareRequest) => string | Promise<string>;
}

/** What `handler` receives as its 4th argument. */
export interface RateLimitHandlerOptions extends Omit<CreateLimiterOptions, 'max'> {
  /** The limit in force for this request. */
  max: number;
  /** Same as `max` (express-rate-limit's name). */
  limit: number;
  /** The window, in seconds. */
  windowSec: number;
  /** The window, in milliseconds (express-rate-limit's unit). */
  windowMs: number;
  /** The status of a blocked request. */
  statusCode: 429;
  /** The configured `message` (or the default body). */
  message: unknown;
}

/**
 * Fixed-window rate limits by client address and endpoint, in Redis (`rate:{ip}:{endpoint}`), and
 * the Express middleware built on them. `rateLimiter` is the module's instance.
 */
export declare class RateLimiter {
  /**
   * Counts one hit of `ip` on `endpoint` in a fixed window (`rateLimits[endpoint]`, else
   * `rateLimits.default`) → `{ allowed, remaining, resetIn (whole seconds), total, limit }`.
   * Fails open (allowed, `total` 0) when Redis fails or is skipped; never rejects for that. An
   * address counts under its bucket (`::ffff:1.2.3.4` → `1.2.3.4`; IPv6 by `ipv6Subnet`). A
   * non-string/number ip or a non-string endpoint: TypeError (`ERR_INVALID_ARG`).
   * @example
   * const result = await rateLimiter.checkLimit(req.ip, '/api/auth/login');
   * if (!result.allowed) return res.status(429).set('Retry-After', String(result.resetIn)).end();
   */
  checkLimit(ip: Id, endpoint: string): Promise<RateLimitResult>;
  /** 1 if the counter existed and was removed, else 0; every node's block cache drops it. A
   * custom limiter's counter is `{endpoint}#{max}per{windowSec}s`. */
  resetLimit(ip: Id, endpoint: string): Promise<number>;
  /** The number of this IP's (bucket's) counters removed (never another bucket's); any form of
   * the address works; every node's block cache drops it. */
  resetAllLimitsForIp(ip: Id): Promise<number>;
  /** The IP's live counters, by endpoint as given (custom limiters' as
   * `{endpoint}#{max}per{windowSec}s`). */
  getIpStatus(ip: Id): Promise<Record<string, IpLimitStatus>>;
  /** Express middleware: login's limit from `rateLimits` (default 5 per 60 s). */
  readonly authLimiter: RateLimitMiddleware;
  /** Express middleware: 3 per 60 s. */
  readonly strictLimiter: RateLimitMiddleware;
  /** Express middleware with its own limit, key and failure policy. */
  createLimiter(options?: CreateLimiterOptions): RateLimitMiddleware;
  /** Key generators for `createLimiter`'s `keyGenerator`. */
  readonly keys: RateLimitKeys;
}

/**
 * Sessions in Redis (`session:{tokenHash}`, and `session:user:{userId}` for per-user invalidation).
 * `sessionCache` is the module's instance.
 */
export declare class SessionCache {
  /** true, or false when `expires_at` is already past (nothing stored) or Redis failed. */
  setSession(tokenHash: string, data: SessionData): Promise<boolean>;
  /** Cache only: the data, or null. */
  getSession(tokenHash: string): Promise<SessionData | null>;
  /** Hashes the raw token; on a miss asks `loaders.session(token)` (once for concurrent misses). */
  getSessionWithFallback(token: string): Promise<(SessionData & { source: Source }) | null>;
  /** true if a session was removed (it also leaves its user's set). */
  invalidateSession(tokenHash: string): Promise<boolean>;
  /** The number of sessions removed. */
  invalidateUserSessions(userId: Id): Promise<number>;
  /** Token hashes of the user's live sessions (expired ones are pruned). */
  getUserSessions(userId: Id): Promise<string[]>;
}

/**
 * Options of `acquire`, `withLock`, `mutex`, `lock` and the semaphore calls. A bad value is a
 * TypeError or RangeError (`ERR_INVALID_ARG`): the call rejects before any Redis call.
 */
export interface LockOptions {
  /** Lock TTL in seconds (default 30, more than 0, at most 86400; fractions allowed). */
  ttlSec?: number;
  /** Further attempts when the lock is busy or Redis failed (default 0), each after a jittered `retryDelayMs`. */
  retries?: number;
  /** Base delay between attempts, spread over [0.5, 1.5) × this (default 50). */
  retryDelayMs?: number;
  /** Keep attempting until this many ms have passed (default 0; `mutex`: 10000). */
  waitMs?: number;
  /**
   * Cancels the call: it rejects with `signal.reason` (an `AbortError` DOMException unless
   * `abort()` was given one) as soon as the signal aborts, before any Redis call when it is
   * already aborted; a grant that arrives after the abort is released at once. Under
   * `withLock`/`mutex`/`withPermit` it also aborts the work's own `signal`; the lock is
   * released when the work settles.
   */
  signal?: AbortSignal;
}

/** The lock is yours until `release()` or its TTL. */
export interface LockGranted {
  /** The lock was granted. */
  acquired: true;
  /** `nodeId:pid:<32 hex digits>` (128 bits from the OS CSPRNG). Needed to release/extend. */
  owner: string;
  /** Fencing token: grows with every grant of this lock. Pass it to the storage you protect. */
  fence: number;
  /** The TTL granted, in seconds. */
  ttl: number;
}

/** Someone else holds the lock. */
export interface LockBusy {
  /** Not granted: another owner holds it. */
  acquired: false;
  /** Absent: the back end answered. */
  error?: undefined;
  /** Owner token of the current holder. */
  heldBy: string;
  /** Seconds the holder's lock has left (whole seconds, rounded up; -1: no expiry). */
  ttl: number;
  /** Milliseconds the holder's lock has left (-1: no expiry). */
  ttlMs: number;
}

/** Redis down, slow or not configured: the lock is refused, never assumed. */
export interface LockRefused {
  /** Not granted: the back end could not answer. */
  acquired: false;
  /** Nobody is known to hold it: absent (declared so `lock.heldBy` compiles after `!lock.acquired`). */
  heldBy?: null;
  /** Why, e.g. `'cache unavailable'`. */
  error: string;
  /**
   * The back end's code: `ECACHEDISABLED`, `ECACHEUNAVAILABLE`, `ETIMEDOUT`, `ECIRCUITOPEN` or
   * `ECLOSED`.
   */
  code: string;
}

/**
 * What `acquire` answers: granted, busy (`heldBy`) or refused (`error`, `code`). Narrow it on
 * `acquired`, then on `error`.
 */
export type LockResult = LockGranted | LockBusy | LockRefused;

/** What `isLocked` answers. */
export interface LockStatus {
  /** Whether someone holds the lock (false too when the back end could not answer: see `error`). */
  locked: boolean;
  /** The holder's owner token, when locked. */
  owner?: string;
  /** Whole seconds left, rounded up. */
  ttl?: number;
  /** Milliseconds left, when locked. */
  ttlMs?: number;
  /** Set (with `locked: false`) when the back end could not answer. */
  error?: string;
  /** With `error`: the back end's code (`ECACHEUNAVAILABLE`, `ETIMEDOUT`, …). */
  code?: string;
}

/** What `withLock`/`mutex`/`withPermit` pass to the work. */
export interface LockContext {
  /** Aborts (reason: an Error with `code: 'ELOCKLOST'`) when the lock is found lost. */
  signal: AbortSignal;
  /** The owner token of the lock held for this work. */
  owner: string;
  /** The fencing token of this grant: pass it to the storage you protect. */
  fence: number;
}

/** What `withLock` and `withPermit` answer. */
export interface WithLockResult<T> {
  /** What `fn` returned (awaited). */
  result: T;
  /** The owner token the work ran under. */
  owner: string;
  /** The fencing token of that grant. */
  fence: number;
  /** True when the watchdog found the lock lost while `fn` ran. */
  lost: boolean;
}

/** Thrown by withLock/mutex when the lock stays busy. */
export interface LockedError extends Error {
  /** Always `ELOCKED`. */
  code: 'ELOCKED';
  /** The current holder's owner token. */
  heldBy: string;
  /** Whole seconds the holder's lock has left. */
  ttl: number;
  /** The lock's resource, as given. */
  resource: Id;
  /** The lock's id, as given. */
  id: Id;
}

/** What a held lock and a held semaphore permit have in common. */
export interface HeldGrant extends AsyncDisposable {
  /** The owner token of this grant. */
  readonly owner: string;
  /** Fencing token of this grant. */
  readonly fence: number;
  /** The TTL the watchdog keeps renewing, in seconds. */
  readonly ttl: number;
  /** Aborts (reason: an Error with `code: 'ELOCKLOST'`) when the grant is found lost. */
  readonly signal: AbortSignal;
  /**
   * Stops the watchdog and releases → true if this call freed it; false when it was already
   * released or lost, or Redis failed (it then frees itself at its TTL). Idempotent.
   */
  release(): Promise<boolean>;
  /** `release()`, answering nothing: what `await using` calls. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A lock held until `release()` or the end of an `await using` block:
 * `await using lock = await distributedLock.lock('payment', id)`. The watchdog extends it every
 * ttl/3 while it is held.
 */
export interface LockHandle extends HeldGrant {
  /** The lock's resource, as given. */
  readonly resource: Id;
  /** The lock's id, as given. */
  readonly id: Id;
}

/** Defaults of one semaphore, given to `distributedLock.semaphore()`. */
export interface SemaphoreOptions {
  /** Default TTL of a permit in seconds (30): a holder that crashed frees its permit after it. */
  ttlSec?: number;
  /** Default wait for a free permit, in ms (0: one attempt). */
  waitMs?: number;
}

/** A permit is yours until `release()` or its TTL. */
export interface PermitGranted {
  /** A permit was granted. */
  acquired: true;
  /** The owner token of this permit: needed to release or extend it. */
  owner: string;
  /** Fencing token: grows with every grant of this semaphore. */
  fence: number;
  /** Permits taken, this one included. */
  held: number;
  /** The TTL granted, in seconds. */
  ttl: number;
  /** Returns this permit → true if this call freed it. */
  release(): Promise<boolean>;
  /** Moves this permit's expiry to `ttlSec` from now (default: the semaphore's TTL) → true if it is still held. */
  extend(ttlSec?: number): Promise<boolean>;
  /** Absent: the back end answered. */
  error?: undefined;
}

/** Every permit is taken. */
export interface PermitBusy {
  /** Not granted: no permit is free. */
  acquired: false;
  /** Permits taken (all of them). */
  held: number;
  /** Ms until the earliest holder's TTL ends (it may release sooner). */
  retryInMs: number;
  /** Absent: the back end answered. */
  error?: undefined;
}

/** Redis down, slow or not configured: no permit is granted. */
export interface PermitRefused {
  /** Not granted: the back end could not answer. */
  acquired: false;
  /** Why, e.g. `'cache unavailable'`. */
  error: string;
  /**
   * The back end's code: `ECACHEDISABLED`, `ECACHEUNAVAILABLE`, `ETIMEDOUT`, `ECIRCUITOPEN` or
   * `ECLOSED`.
   */
  code: string;
}

/** What `semaphore.acquire()` answers: granted, busy or refused (`error`, `code`). */
export type PermitResult = PermitGranted | PermitBusy | PermitRefused;

/** What `semaphore.status()` answers. */
export interface SemaphoreStatus {
  /** Live holders. */
  held: number;
  /** The semaphore's size. */
  permits: number;
  /** Ms until the earliest holder's TTL ends; -1 when there is none. */
  nextExpiryMs?: number;
  /** Set (with `held: 0`) when the back end could not answer. */
  error?: string;
  /** With `error`: the back end's code. */
  code?: string;
}

/** A permit held until `release()` or the end of an `await using` block (see {@link LockHandle}). */
export interface PermitHandle extends HeldGrant {
  /** The semaphore's name, as given. */
  readonly semaphore: Id;
}

/** Thrown by withPermit/permit when every permit stays taken. */
export interface SemaphoreFullError extends Error {
  /** Always `ELOCKED`. */
  code: 'ELOCKED';
  /** The semaphore's name, as given. */
  semaphore: Id;
  /** Permits taken when the wait ended. */
  held: number;
  /** The semaphore's size. */
  permits: number;
  /** Ms until the earliest holder's TTL ends. */
  retryInMs: number;
}

/**
 * A fenced counting semaphore on `sem:{name}`: at most `permits` holders at once on the back
 * end (one Lua script per attempt). Holders expire by their TTL; fences grow with every grant.
 */
export interface Semaphore {
  /** The name given to `semaphore()`. */
  readonly name: Id;
  /** At most this many holders at once. */
  readonly permits: number;
  /** One permit, or why not; never throws for an outage. No watchdog: it frees itself at its TTL. */
  acquire(options?: LockOptions): Promise<PermitResult>;
  /** True only if `owner` held a live permit and this call freed it. */
  release(owner: string): Promise<boolean>;
  /** True only if `owner` still holds a permit; it now expires `ttlSec` from now. */
  extend(owner: string, ttlSec?: number): Promise<boolean>;
  /** Live holders and the next expiry; never throws for an outage (`error` is set, `held` 0). */
  status(): Promise<SemaphoreStatus>;
  /**
   * Runs `fn` holding a permit, as `withLock` does (watchdog, always released, rethrows);
   * {@link SemaphoreFullError} (`ELOCKED`) when none frees within `waitMs`.
   */
  withPermit<T>(fn: (ctx: LockContext) => T | Promise<T>, options?: LockOptions): Promise<WithLockResult<Awaited<T>>>;
  /** A permit as a handle with the watchdog: `await using p = await sem.permit()`. */
  permit(options?: LockOptions): Promise<PermitHandle>;
}

/**
 * Locks in Redis (`lock:{resource}:{id}`, owner-checked, fenced) and semaphores. `distributedLock`
 * is the module's instance.
 */
export declare class DistributedLock {
  /**
   * One attempt at `lock:{resource}:{id}` (more with `retries` or `waitMs`) → granted
   * (`owner`, `fence`, `ttl`), busy (`heldBy`, `ttl`) or refused (`error`, `code`: Redis down, slow or
   * not configured; a lock is never assumed). Never rejects for an outage; rejects with a
   * TypeError/RangeError (`ERR_INVALID_ARG`) for a bad resource, id or option (nothing written),
   * and with `signal.reason` when `options.signal` aborts.
   * @example
   * const lock = await distributedLock.acquire('payment', paymentId, { ttlSec: 30 });
   * if (!lock.acquired) throw new Error(`Payment locked by: ${lock.heldBy ?? lock.error}`);
   * try {
   *   await processPayment(paymentId, lock.fence);
   * } finally {
   *   await distributedLock.release('payment', paymentId, lock.owner);
   * }
   */
  acquire(resource: Id, id: Id, options?: LockOptions): Promise<LockResult>;
  /** Compare-and-delete: true only if `owner` still held the lock. */
  release(resource: Id, id: Id, owner: string): Promise<boolean>;
  /** Compare-and-expire: true only if `owner` still holds the lock (default 30 s). */
  extend(resource: Id, id: Id, owner: string, ttlSec?: number): Promise<boolean>;
  /**
   * Who holds `lock:{resource}:{id}` → `{ locked: true, owner, ttl, ttlMs }` or
   * `{ locked: false }`; `{ locked: false, error, code }` when the back end could not answer (never
   * rejects for an outage). A bad resource or id: TypeError (`ERR_INVALID_ARG`).
   * @example
   * const status = await distributedLock.isLocked('payment', paymentId);
   * // { locked: true, owner: 'node1:1234:abc…', ttl: 25, ttlMs: 24817 }
   */
  isLocked(resource: Id, id: Id): Promise<LockStatus>;
  /**
   * Runs `fn` under the lock, extending it every ttl/3; always releases; rethrows what `fn`
   * throws; throws a {@link LockedError} (`ELOCKED`) when the lock stays busy, or an error with
   * the back end's code when Redis is unavailable.
   * @example
   * const { result, lost } = await distributedLock.withLock('approval', approvalId, async ({ signal, fence }) => {
   *   return processApproval(approvalId, { signal, fence });
   * }, { ttlSec: 30, waitMs: 2000 });
   */
  withLock<T>(resource: Id, id: Id, fn: (ctx: LockContext) => T | Promise<T>, options?: LockOptions): Promise<WithLockResult<Awaited<T>>>;
  /** `withLock` on `lock:mutex:{name}` that waits its turn (`waitMs`, default 10 s) → what `fn` returns. */
  mutex<T>(name: Id, fn: (ctx: LockContext) => T | Promise<T>, options?: LockOptions): Promise<Awaited<T>>;
  /** `acquire('task', id, options)`. */
  acquireTaskLock(id: Id, options?: LockOptions): Promise<LockResult>;
  /** `acquire('approval', id, options)`. */
  acquireApprovalLock(id: Id, options?: LockOptions): Promise<LockResult>;
  /** `acquire('payment', id, options)`. */
  acquirePaymentLock(id: Id, options?: LockOptions): Promise<LockResult>;
  /**
   * Takes the lock as a {@link LockHandle} (`await using lock = await distributedLock.lock(…)`).
   * Rejects with a {@link LockedError} (`ELOCKED`, `heldBy`, `ttl`) when it stays busy, with
   * the back end's code when Redis failed (never granted then), with `signal.reason` when
   * `options.signal` aborts the wait.
   */
  lock(resource: Id, id: Id, options?: LockOptions): Promise<LockHandle>;
  /**
   * A counting semaphore of `permits` (an integer from 1 to 10000) named `name` (an id without
   * `{` or `}`: it is the hash tag of the semaphore's keys).
   */
  semaphore(name: Id, permits: number, options?: SemaphoreOptions): Semaphore;
}

/** What `permissionCache.nearCacheStats()` answers: the in-process copies of permission snapshots. */
export interface NearCacheStats {
  /** Whether the near cache is on (`nearCacheTtlMs` > 0). */
  enabled: boolean;
  /** True only while the pub/sub subscription is confirmed. */
  trusted: boolean;
  /** Snapshots held by the native near cache. */
  size: number;
  /** The most snapshots held (`nearCacheMax`). */
  max: number;
  /** How long a snapshot is held, in ms (`nearCacheTtlMs`). */
  ttlMs: number;
  /** Answers from process memory (both layers: the JS copy and the native near cache). */
  hits: number;
  /** Lookups the near cache could not answer. */
  misses: number;
  /** Snapshots stored in the near cache. */
  fills: number;
  /** Fills refused: not trusted (no confirmed subscription) or invalidated during the load. */
  refusedFills: number;
  /** Snapshots dropped by invalidations (local or received). */
  invalidations: number;
  /** The JS-side copy in front of it: live entries, and the answers it gave with no native call. */
  l1: {
    /** Live entries of the JS-side copy. */
    size: number;
    /** Answers it gave without a native call. */
    hits: number;
  };
}

/**
 * Permission snapshots in Redis (`perm:user:{userId}`, `perm:role:{roleId}`) behind a near cache,
 * and the checks on them. `permissionCache` is the module's instance.
 */
export declare class PermissionCache {
  /** Cache only (near cache, then Redis): the snapshot or null. */
  getUserPermissions(userId: Id): Promise<PermissionSnapshot | null>;
  /** `perm:user:{userId}` for `ttlSec` (60…300, default 300; else RangeError) → true, false if Redis failed. */
  setUserPermissions(userId: Id, snapshot: PermissionSnapshot, ttlSec?: number): Promise<boolean>;
  /** On a miss asks `loaders.userPermissions(userId, role)` once for concurrent callers. */
  getUserPermissionsWithFallback(userId: Id, role?: Id): Promise<(PermissionSnapshot & { source: Source }) | null>;
  /**
   * Whether the user may use `module`: `'*'` or `module` in the snapshot's `modules`, or a
   * super role (`superRoles`). Reads the near cache, then Redis, then on a miss
   * `loaders.userPermissions(userId)` (cached); no snapshot anywhere → false. When Redis fails the
   * loader answers; it rejects only when the loader rejects. A bad id or a non-string module:
   * TypeError (`ERR_INVALID_ARG`).
   * @example
   * if (!(await permissionCache.hasModulePermission(req.user.id, 'INVENTORY'))) return res.sendStatus(403);
   */
  hasModulePermission(userId: Id, module: string): Promise<boolean>;
  /**
   * Whether the user may do `action` on `page`: the page's list holds `action` or `'*'`, or a
   * super role. Read as {@link PermissionCache.hasModulePermission} is (near cache, Redis, loader;
   * no snapshot → false). A bad id or a non-string page or action: TypeError (`ERR_INVALID_ARG`).
   * @example
   * const canEdit = await permissionCache.hasPagePermission(userId, 'inventory-items', 'edit');
   */
  hasPagePermission(userId: Id, page: string, action: string): Promise<boolean>;
  /** Deletes, drops the local near copy, broadcasts → true if a snapshot was removed. */
  invalidateUserPermissions(userId: Id): Promise<boolean>;
  /** Cache only: the role's snapshot or null. */
  getRolePermissions(roleId: Id): Promise<PermissionSnapshot | null>;
  /** `perm:role:{roleId}` for 5 minutes. */
  setRolePermissions(roleId: Id, snapshot: PermissionSnapshot): Promise<boolean>;
  /**
   * On a miss asks `loaders.rolePermissions(roleId)` once for concurrent callers → the snapshot
   * with its `source`, or null.
   */
  getRolePermissionsWithFallback(roleId: Id): Promise<(PermissionSnapshot & { source: Source }) | null>;
  /** Deletes, drops the role and every user snapshot from near caches, broadcasts. */
  invalidateRolePermissions(roleId: Id): Promise<boolean>;
  /** The near cache's counters (synchronous, no Redis call). */
  nearCacheStats(): NearCacheStats;
}

/** The invalidation channels (each prefixed with `keyPrefix` on the wire). */
export type Channel = 'permissions:invalidate' | 'sessions:invalidate' | 'cache:invalidate';

/** A message as received: what was published, plus `origin` (nodeId) and `ts` (epoch ms). */
export interface InvalidationMessage {
  /** The `nodeId` of the sender. */
  origin: string;
  /** When it was sent, epoch ms. */
  ts: number;
  /** The published fields (`type`, `userId`, `roleId`, `keys`, …). */
  [field: string]: unknown;
}

/** Received messages dropped before the near cache or a handler saw them, by reason. */
export interface PubSubRejected {
  /** Over `maxMessageBytes`. */
  oversize: number;
  /** `pubsubSecret` is set and the message carries no signature. */
  unsigned: number;
  /** `pubsubSecret` is set and the signature matches none of the secrets. */
  badSignature: number;
}

/** What `pubsub.status()` answers (synchronous). */
export interface PubSubStatus {
  /** Whether the subscription is confirmed. */
  subscribed: boolean;
  /** Whether the subscriber connection is up. */
  connected: boolean;
  /** Times the subscription was restored after a reconnection. */
  resubscribes: number;
  /** Messages dropped because the handlers did not keep up. */
  dropped: number;
  /** Messages dropped before any handler saw them, by reason. */
  rejected: PubSubRejected;
  /** `pubsubSecret` is set. */
  signed: boolean;
  /** null while the cache is disabled. */
  maxMessageBytes: number | null;
  /** This instance's sender id (32 hex) carried by its messages; null while disabled. */
  sender: string | null;
  /** Received messages that carried a sender id and number (and were tracked). */
  numbered: number;
  /** Received messages without a (valid) sender id and number: applied, not tracked. */
  unnumbered: number;
  /** Gap detection (README "Gap detection"); each of these dropped the near caches. */
  gaps: number;
  /** Messages received out of their sender's order. */
  outOfOrder: number;
  /** Senders seen restarting (a new numbering). */
  senderRestarts: number;
  /** Senders first seen in the middle of their numbering. */
  lateJoins: number;
  /** Senders forgotten beyond the 4,096 tracked. */
  forgottenSenders: number;
  /** Times the near caches were dropped by gap detection. */
  nearDrops: number;
  /** Senders tracked now. */
  senders: number;
}

/**
 * Cross-node invalidation over Redis pub/sub: every node drops its near copies on a message.
 * `pubsub` is the module's instance.
 */
export declare class PubSub {
  /** Idempotent → true once subscribed, false if not within connectTimeoutMs (it keeps trying). Never rejects for back-end reasons. */
  subscribe(): Promise<boolean>;
  /** Whether the subscriber connection is up (synchronous). */
  isConnected(): boolean;
  /** The subscription's state and counters (synchronous). */
  status(): PubSubStatus;
  /** → a function that removes the handler. A throwing handler is reported (`'error'` event, else stderr), never fatal. */
  onMessage(channel: Channel, handler: (data: InvalidationMessage, channel: Channel) => unknown): () => boolean;
  /** Listens to handler errors: a throwing `onMessage` handler is reported here (else on stderr). */
  on(event: 'error', listener: (err: unknown, channel: Channel) => void): this;
  /** As `on`, for one event. */
  once(event: 'error', listener: (err: unknown, channel: Channel) => void): this;
  /** Removes a listener added with `on` or `once`. */
  off(event: 'error', listener: (err: unknown, channel: Channel) => void): this;
  /** → the number of subscribers that received it. */
  publishPermissionInvalidation(msg: Record<string, unknown>): Promise<number>;
  /**
   * Publishes on `sessions:invalidate` → the number of subscribers that received it (0 when Redis
   * failed).
   */
  publishSessionInvalidation(msg: Record<string, unknown>): Promise<number>;
  /**
   * Publishes on `cache:invalidate` → the number of subscribers that received it (0 when Redis
   * failed).
   */
  publishCacheInvalidation(msg: Record<string, unknown>): Promise<number>;
  /** Deletes `perm:user:{userId}` and broadcasts it → true if a snapshot was removed. */
  invalidateUserPermissions(userId: Id): Promise<boolean>;
  /**
   * Deletes `perm:role:{roleId}` and broadcasts it (every node drops the role's user snapshots) →
   * true if a snapshot was removed.
   */
  invalidateRolePermissions(roleId: Id): Promise<boolean>;
  /** `sessionId` = the token hash the session is stored under. */
  invalidateSession(sessionId: string): Promise<boolean>;
  /** Deletes every session of the user and broadcasts it → the number removed. */
  invalidateUserSessions(userId: Id): Promise<number>;
  /** Exact (unprefixed) keys → how many existed. */
  invalidateKeys(keys: string[]): Promise<number>;
  /** SCAN + UNLINK with keyPrefix applied → keys removed. Empty or all-`*` patterns: TypeError. */
  invalidatePattern(pattern: string): Promise<number>;
  /** Closes the subscriber connection of this instance. */
  shutdown(): Promise<void>;
}

/**
 * The whole cache's circuit. Every data node has its own breaker (the one server, each Cluster
 * primary, the primary behind Sentinel); on one server this is that breaker's state, on Cluster
 * and Sentinel the aggregate: `'closed'` when every node's breaker is closed, `'open'` only
 * when every node's is open, `'half-open'` when none is closed but some let a probe through,
 * `'degraded'` when some are closed and others not (keys on the closed nodes are served from
 * Redis, the others fall back at once with `ECIRCUITOPEN`).
 */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'degraded';

/** What `ping()` answers; it never rejects for a back-end failure. */
export interface PingResult {
  /** `'PONG'` when Redis answered, else null. */
  pong: 'PONG' | null;
  /** Round-trip time in milliseconds (two decimals). */
  ms: number;
  /** Whether the cache is usable (as `isEnabled()` after this ping). */
  enabled: boolean;
  /**
   * Why not, when `pong` is null (e.g. `'cache disabled'`, a connection error, `'revocations
   * pending replay'`).
   */
  error?: string;
  /** The circuit after this ping (a successful ping closes the breaker of the node it reached):
   * see {@link CircuitState}. */
  circuit: CircuitState;
  /** With `error: 'revocations pending replay'`: the revocations this node still has to replay. */
  pendingRevocations?: number;
  /** Cluster and Sentinel only: each data node's own PING (every primary serving slots; the
   * primary behind the sentinels), sent concurrently; `[]` when no node could be listed. */
  nodes?: PingNode[];
}

/** One data node's answer to `ping()` on Cluster or Sentinel. */
export interface PingNode {
  /** `host:port`. */
  address: string;
  /** What the node is: a cluster primary serving slots, or the primary behind sentinels. */
  role: 'primary';
  /** `'PONG'` when the node answered, else null. */
  pong: 'PONG' | null;
  /** Round-trip time in milliseconds (two decimals). */
  ms: number;
  /** This node's own circuit breaker after this PING (which goes to the node even while its
   * breaker is open, and feeds it). */
  circuit: 'closed' | 'open' | 'half-open';
  /** Why not, when `pong` is null. */
  error?: string;
}

/** Counters of one service since the instance was created. */
export interface ServiceStats {
  /** Answers found in the cache. */
  hits: number;
  /** Lookups not found in the cache. */
  misses: number;
  /**
   * Answers given without Redis (a loader, a default, fail-open) because Redis failed or was
   * skipped.
   */
  fallbacks: number;
  /** Calls of the database loaders. */
  loaderCalls: number;
  /** Back-end failures absorbed. */
  errors: number;
}

/** `stats().rateLimit`. */
export interface RateLimitStats extends ServiceStats {
  /** Hits answered allowed / blocked (429 or, failing closed, 503). */
  allowed: number;
  /** Hits answered blocked (429, or 503 when failing closed). */
  blocked: number;
  /** Blocked hits answered by the in-process block cache, with no Redis call. */
  blockCacheHits: number;
  /** Hits decided by the in-process insurance limiter while Redis failed. */
  insured: number;
}

/** `stats().lock`. */
export interface LockStats extends ServiceStats {
  /** Attempts retried after waiting (busy lock or back-end failure). */
  waits: number;
  /** Locks found lost while their holder ran. */
  lost: number;
}

/** `stats().pubsub`. */
export interface PubSubStats extends ServiceStats {
  /** Messages received and applied. */
  messages: number;
  /** `onMessage` handlers that threw or rejected. */
  handlerErrors: number;
  /** Delivery lag of received messages (receive time − sender `ts`), in ms. */
  lagMsSum: number;
  /** The largest delivery lag seen, in ms. */
  lagMsMax: number;
  /** Messages in `lagMsSum`. */
  lagSamples: number;
  /** As in `pubsub.status()`. */
  dropped: number;
  /** As in `pubsub.status()`. */
  rejected: PubSubRejected;
  /** As in `pubsub.status()`. */
  gaps: number;
  /** As in `pubsub.status()`. */
  outOfOrder: number;
  /** As in `pubsub.status()`. */
  senderRestarts: number;
  /** As in `pubsub.status()`. */
  lateJoins: number;
  /** As in `pubsub.status()`. */
  forgottenSenders: number;
  /** As in `pubsub.status()`. */
  nearDrops: number;
  /** As in `pubsub.status()`. */
  unnumbered: number;
}

/** `stats().session`. */
export interface SessionStats extends ServiceStats {
  /** Tokens answered null at once by getSessionWithFallback (empty, or over 64 KiB). */
  rejectedTokens: number;
  /** Sessions whose expires_at could not be read (setSession, a loader row, a cached value). */
  badExpiry: number;
  /** Cached values that were not a session (not a JSON object): deleted, read as misses. */
  corrupt: number;
  /** Loader rows not cached: the session (or its user's sessions) was revoked during the load. */
  staleFills: number;
}

/** `stats().permission`. */
export interface PermissionStats extends ServiceStats {
  /** Stored values that were not a permissions snapshot: deleted, read as misses. */
  corrupt: number;
  /** Loader snapshots not cached: the snapshot was revoked during the load. */
  staleFills: number;
}

/** `stats().revocation`: the revocation journal (README "Revocation"). */
export interface RevocationStats {
  /** Revocations kept, not yet replayed (this node treats them as revoked). */
  pending: number;
  /** Pending session revocations. */
  sessions: number;
  /** Pending revocations of all of a user's sessions. */
  userSessions: number;
  /** Pending user snapshot revocations. */
  userPermissions: number;
  /** Pending role snapshot revocations. */
  rolePermissions: number;
  /** Pending general cache key revocations (`del`, `pubsub.invalidateKeys`), one per key. */
  cacheKeys: number;
  /** True after an overflow, until the replay: every read of this node skips the cache. */
  overflowed: boolean;
  /** Revocations that did not fit (revocationJournalMax): lost for the other nodes. */
  journalOverflow: number;
  /** Revocations kept since the start. */
  recorded: number;
  /** Revocations replayed on Redis since the start. */
  replayed: number;
  /** Replay attempts. */
  replayRounds: number;
  /** Replay attempts that failed (retried later). */
  replayFailures: number;
  /** Entries refused as input on replay (never expected). */
  dropped: number;
  /** revocationJournalMax */
  max: number;
}

/** What `stats()` answers: counters since the instance was created (synchronous, no Redis call). */
export interface Stats {
  /** Session counters. */
  session: SessionStats;
  /** Permission counters. */
  permission: PermissionStats;
  /** Rate-limit counters. */
  rateLimit: RateLimitStats;
  /** Lock counters (semaphores included). */
  lock: LockStats;
  /** Pub/sub counters. */
  pubsub: PubSubStats;
  /** Calls waiting on the back end now. */
  inFlight: number;
  /** As `isEnabled()`. */
  enabled: boolean;
  /** The whole cache's circuit (read without a round trip): see {@link CircuitState}. */
  circuit: CircuitState;
  /** The revocation journal. */
  revocation: RevocationStats;
}

/** One Prometheus metric family of {@link Cache.collectMetrics}: samples are
 * `[nameSuffix, labels, value]` (suffix `''`, `'_sum'`/`'_count'` for summaries and
 * histograms, `'_bucket'` for a histogram's buckets, whose labels add `le`). */
export interface MetricFamily {
  /** The family name, e.g. `bisman_cache_hits_total`. */
  name: string;
  /** The Prometheus type. */
  type: 'counter' | 'gauge' | 'summary' | 'histogram';
  /** The HELP text. */
  help: string;
  /** The label names its samples carry (e.g. `['service']`, `['endpoint', 'decision']`). */
  labelNames: string[];
  /** The samples, as `[nameSuffix, labels, value]`. */
  samples: Array<[suffix: string, labels: Record<string, string>, value: number]>;
}

/** The services named by `stats()` and the `'error'` event. */
export type ServiceName = 'session' | 'permission' | 'rateLimit' | 'lock' | 'pubsub';

/** The events of a cache instance (and of the module's default instance), for logging. */
export interface CacheEvents {
  /** A back-end failure (Redis down, slow, refused) that a call of `service` absorbed by
   * falling back; one per failed operation. Listening never changes what the call answers. */
  error: [err: Error & { /** The back end's error code, e.g. `ECACHEUNAVAILABLE`, `ECIRCUITOPEN`. */ code?: string }, service: ServiceName];
  /** `'open'`: the back end became unavailable (isEnabled() false, reads go to the loaders);
   * `'closed'`: it is back. On Cluster and Sentinel the whole cache: `'open'` once every data
   * node's breaker is open, not while some still answer (see `'nodeCircuit'`). Polled every
   * 100 ms while someone listens. */
  circuit: [event: { /** The breaker's new state. */ state: 'open' | 'closed' }];
  /** Cluster and Sentinel: one data node's own breaker opened (`'open'`: the keys of that node
   * fall back at once) or closed again (`'closed'`). Polled every 100 ms while someone listens. */
  nodeCircuit: [event: NodeCircuitEvent];
  /** The back end answers again after being down. */
  reconnect: [];
}

/** The `'nodeCircuit'` event of {@link CacheEvents}. */
export interface NodeCircuitEvent {
  /** The node's `host:port` (never a password). */
  node: string;
  /** Its breaker's new state (`'open'` also while half-open: a probe is let through). */
  state: 'open' | 'closed';
  /** True when a node whose breaker was open left the topology (a failover promoted another
   * node): its breaker is dropped. */
  left?: boolean;
}

/** A listener of event `E` of {@link CacheEvents}. */
export type CacheListener<E extends keyof CacheEvents> = (...args: CacheEvents[E]) => void;

/**
 * The key builders (pure functions, no Redis call): the unprefixed Redis keys of the ERP's
 * patterns. A bad id is a TypeError (`ERR_INVALID_ARG`), one over 512 bytes a RangeError
 * (`ERR_VALUE_TOO_LARGE`).
 */
export interface KeyBuilders {
  /** `session:{tokenHash}`. */
  sessionKey(tokenHash: Id): string;
  /** `session:user:{userId}`. */
  sessionUserKey(userId: Id): string;
  /** `perm:user:{userId}`. */
  permUserKey(userId: Id): string;
  /** `perm:role:{roleId}`. */
  permRoleKey(roleId: Id): string;
  /** `rate:{ip}:{endpoint}` (`/` in the endpoint becomes `_`). */
  rateKey(ip: Id, endpoint: string): string;
  /** `lock:{resource}:{id}`. */
  lockKey(resource: Id, id: Id): string;
  /** SHA-256 hex of a raw token. */
  hashToken(token: string): string;
}

/**
 * One cache: its own back end, options, counters and services. The module's exports are a default
 * instance; `createCache()` makes others (e.g. per tenant or for tests).
 */
export declare class Cache implements KeyBuilders {
  /** Same as `createCache(options)`. */
  constructor(options?: CacheOptions);
  /** This instance's sessions. */
  readonly sessionCache: SessionCache;
  /** This instance's locks and semaphores. */
  readonly distributedLock: DistributedLock;
  /** This instance's permission snapshots. */
  readonly permissionCache: PermissionCache;
  /** This instance's invalidation channel. */
  readonly pubsub: PubSub;
  /** This instance's rate limits and middleware. */
  readonly rateLimiter: RateLimiter;
  /** As the module's {@link configure}, for this instance → this instance. */
  configure(options?: CacheOptions): this;
  /** As the module's {@link ping}, for this instance. */
  ping(): Promise<PingResult>;
  /** As the module's {@link isEnabled}, for this instance. */
  isEnabled(): boolean;
  /** As the module's {@link stats}, for this instance. */
  stats(): Stats;
  /** Prometheus text (exposition format 0.0.4) of this instance's counters. */
  metrics(): string;
  /** The same counters as data, e.g. for a prom-client collector. */
  collectMetrics(): MetricFamily[];
  /** `'text/plain; version=0.0.4; charset=utf-8'`: the Content-Type of {@link metrics}. */
  readonly metricsContentType: string;
  /** Listens to an event of this instance (`'error'`, `'circuit'`, `'nodeCircuit'`, `'reconnect'`) → this instance. */
  on<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): this;
  /** As `on`, for one event → this instance. */
  once<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): this;
  /** Removes a listener → this instance. */
  off<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): this;
  /** The listeners of `event`. */
  listenerCount(event: keyof CacheEvents): number;
  /** As the module's {@link shutdown}, for this instance. */
  shutdown(): Promise<void>;
  /** `this.sessionCache.getSessionWithFallback(token)`. */
  getSessionWithFallback(token: string): Promise<(SessionData & { source: Source }) | null>;
  /** `this.sessionCache.invalidateSession(tokenHash)`. */
  invalidateSession(tokenHash: string): Promise<boolean>;
  /** `session:{tokenHash}`. */
  sessionKey(tokenHash: Id): string;
  /** `session:user:{userId}`. */
  sessionUserKey(userId: Id): string;
  /** `perm:user:{userId}`. */
  permUserKey(userId: Id): string;
  /** `perm:role:{roleId}`. */
  permRoleKey(roleId: Id): string;
  /** `rate:{ip}:{endpoint}` (`/` in the endpoint becomes `_`). */
  rateKey(ip: Id, endpoint: string): string;
  /** `lock:{resource}:{id}`. */
  lockKey(resource: Id, id: Id): string;
  /** SHA-256 hex of a raw token. */
  hashToken(token: string): string;
}

/** The default instance's sessions (`session:{tokenHash}`). */
export declare const sessionCache: SessionCache;
/** The default instance's locks and semaphores. */
export declare const distributedLock: DistributedLock;
/** The default instance's permission snapshots and checks. */
export declare const permissionCache: PermissionCache;
/** The default instance's invalidation channel. */
export declare const pubsub: PubSub;
/** The default instance's rate limits and Express middleware. */
export declare const rateLimiter: RateLimiter;
/**
 * (Re)configures the default instance: the singletons keep their identity and move to the new
 * back end (the previous connection is closed; a subscription follows). Without `url`, `cluster`
 * or `sentinel` the URL is `process.env.REDIS_URL`; none at all: the cache is disabled and every
 * call falls back. Synchronous: a bad option throws a TypeError or RangeError with
 * `code: 'ERR_INVALID_ARG'` and nothing changes. Connecting is lazy: the first call (or `ping()`)
 * connects.
 * @example
 * configure({ url: process.env.REDIS_URL, keyPrefix: 'erp:prod:', commandTimeoutMs: 500 });
 */
export declare function configure(options?: CacheOptions): void;
/**
 * Another instance with its own back end, options, counters and services (the module's
 * exports are the default instance). Bad options: TypeError/RangeError (`ERR_INVALID_ARG`).
 * @example
 * const tenantCache = createCache({ url: 'redis://tenant-b:6379', keyPrefix: 'erp:b:' });
 */
export declare function createCache(options?: CacheOptions): Cache;
/**
 * One round trip to Redis, even while the circuit breaker is open (a success closes it) →
 * `{ pong: 'PONG', ms, enabled: true, circuit }`, or `{ pong: null, ms, enabled: false, error,
 * circuit }` when disabled or Redis failed. Never rejects for a back-end failure; waits at most
 * `commandTimeoutMs` (revocations pending replay first: up to 2 × `commandTimeoutMs`).
 * @example
 * app.get('/health', async (req, res) => {
 *   const health = await ping();
 *   res.status(health.pong ? 200 : 503).json(health);
 * });
 */
export declare function ping(): Promise<PingResult>;
/**
 * Synchronous: false while no back end is configured, while Redis is known to be down, while the
 * circuit is neither closed nor degraded (on Cluster, true while some primaries still answer), or
 * while revocations wait for replay. Callers skip the cache then (`return fetchFromDatabase()`).
 */
export declare function isEnabled(): boolean;
/** The default instance's counters (synchronous, no Redis call). */
export declare function stats(): Stats;
/** Prometheus text (exposition format 0.0.4) of the default instance's counters. */
export declare function metrics(): string;
/** The default instance's counters as Prometheus families (data), e.g. for a prom-client collector. */
export declare function collectMetrics(): MetricFamily[];
/** `'text/plain; version=0.0.4; charset=utf-8'`: the Content-Type of {@link metrics}. */
export declare const metricsContentType: string;
/** Listens to an event of the default instance ('error', 'circuit', 'nodeCircuit', 'reconnect'). */
export declare function on<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): typeof import('./index');
/** As {@link on}, for one event → the module. */
export declare function once<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): typeof import('./index');
/** Removes a listener of the default instance → the module. */
export declare function off<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): typeof import('./index');
/**
 * Closes every connection of the default instance: calls still in flight settle at once as
 * back-end failures (`code: 'ECLOSED'`; their fallbacks answer) and nothing keeps the process
 * alive. Never rejects. A later call connects again.
 * @example
 * process.on('SIGTERM', async () => {
 *   await shutdown();
 *   server.close();
 * });
 */
export declare function shutdown(): Promise<void>;
/**
 * `sessionCache.getSessionWithFallback(token)`: the session of a raw token (hashed with
 * {@link hashToken}) with its `source`, from the cache or, on a miss, from `loaders.session(token)`
 * (one load for concurrent misses, then cached); null when there is no live session (or the token
 * is empty or over 64 KiB). When Redis fails the loader answers (`source: 'database'`); it
 * rejects only when the loader rejects.
 * @example
 * const session = await getSessionWithFallback(token);
 * if (!session) return res.status(401).json({ error: 'Invalid session' });
 * req.sessionSource = session.source; // 'cache' | 'database'
 */
export declare function getSessionWithFallback(token: string): Promise<(SessionData & { source: Source }) | null>;
/**
 * `sessionCache.invalidateSession(tokenHash)`: true if a session was removed (it also leaves its
 * user's set).
 */
export declare function invalidateSession(tokenHash: string): Promise<boolean>;
/** `session:{tokenHash}`. A bad id: TypeError (`ERR_INVALID_ARG`). */
export declare function sessionKey(tokenHash: Id): string;
/** `session:user:{userId}`. */
export declare function sessionUserKey(userId: Id): string;
/** `perm:user:{userId}`. */
export declare function permUserKey(userId: Id): string;
/** `perm:role:{roleId}`. */
export declare function permRoleKey(roleId: Id): string;
/**
 * `rate:{ip}:{endpoint}` (`/` in the endpoint becomes `_`): `rateKey('1.2.3.4', '/api/auth/login')`
 * → `'rate:1.2.3.4:_api_auth_login'`.
 */
export declare function rateKey(ip: Id, endpoint: string): string;
/** `lock:{resource}:{id}`: `lockKey('task', 99)` → `'lock:task:99'`. */
export declare function lockKey(resource: Id, id: Id): string;
/** SHA-256 hex of a raw token: the `tokenHash` sessions are stored under. */
export declare function hashToken(token: string): string;

/**
 * The context object published on the diagnostics_channel TracingChannel
 * `bisman-cache:operation` (start, end, asyncStart, asyncEnd, error) around every public
 * operation; nothing is built while the channel has no subscriber. It never carries a token,
 * a token hash, an IP, an id, a password or an answer.
 *
 * ```js
 * const dc = require('node:diagnostics_channel');
 * dc.tracingChannel('bisman-cache:operation').subscribe({
 *   start(c) { c.t0 = performance.now(); },
 *   asyncEnd(c) { console.log(c.service, c.operation, c.keyFamily, performance.now() - c.t0, c.error?.code); },
 *   end() {}, asyncStart() {}, error() {},
 * });
 * ```
 */
export interface OperationTraceContext {
  /** The service of the call (`'health'`: `ping`). */
  service: 'session' | 'permissions' | 'rateLimit' | 'lock' | 'pubsub' | 'cache' | 'health';
  /** The method called: `'getSession'`, `'checkLimit'`, `'acquire'`, `'ping'`, … */
  operation: string;
  /** The key's family (`'session'`, `'perm:user'`, `'rate'`, `'lock:approval'`, a channel name);
   * absent for operations on no key. A lock resource with a digit shows as `'lock'`. */
  keyFamily?: string;
  /** Set when the back end is one `redis://` or `rediss://` server. */
  serverAddress?: string;
  /** The server's port, with `serverAddress`. */
  serverPort?: number;
  /** The database number of the URL (`/2`, `?db=2`), when not 0. */
  dbIndex?: number;
  /** The rejection (or synchronous throw) of a failing call. */
  error?: unknown;
}

// ---------------------------------------------------------------------------------------------
// The general cache: get / set / del / wrap (docs/cache.md), on the module and on every Cache.
// ---------------------------------------------------------------------------------------------

/**
 * A value the general cache stores: anything `JSON.stringify` can write (it comes back as
 * `JSON.parse` reads it), or a `Buffer` (it comes back a `Buffer`).
 */
export type CacheValue = unknown;

/** Options of `set()`. */
export interface SetOptions {
  /** Required: seconds the entry lives, more than 0 and at most 30 days (2 592 000). Missing:
   * a TypeError (`ERR_INVALID_ARG`); out of range: a RangeError (`ERR_OUT_OF_RANGE`). */
  ttlSec: number;
}

/** `wrap()`'s `near` as an object. */
export interface NearOptions {
  /** How long (ms) a value stays in process memory: more than 0, at most `ttlSec` × 1000. */
  ttlMs: number;
}

/** Options of `wrap()`. */
export interface WrapOptions {
  /** Required: seconds a loaded value stays fresh (more than 0, at most 30 days). */
  ttlSec: number;
  /** Seconds past `ttlSec` during which the old value is still served at once while ONE
   * background refresh (per process) calls the loader; default 0 (none). The entry's Redis TTL
   * is `ttlSec + staleSec` (at most 30 days in all). */
  staleSec?: number;
  /** Keep the decoded value in process memory: `true` (5 s, at most `ttlSec`) or `{ ttlMs }`.
   * Used only while this instance's pub/sub subscription is up (`pubsub.subscribe()`); every
   * invalidation this node makes or hears (`invalidateKeys`, `invalidatePattern`, …) voids it,
   * as does a local `del`/`set` of the key. Bounded: 1000 entries, 16 MiB. The value is
   * shared between callers: treat it as read-only. */
  near?: boolean | NearOptions;
  /** The loader's time limit in ms (default 10 000, at most 600 000): past it every waiting
   * caller gets an error with `code: 'ERR_LOADER_TIMEOUT'` and nothing is cached. */
  loaderTimeoutMs?: number;
  /** Single-flight across nodes (distributed stampede protection), off by default. On a miss
   * the first caller takes a short lease on the key in Redis (it lasts `loaderTimeoutMs` +
   * 2 s) and calls its loader; callers on every other node wait for its fill (polling the key,
   * 10 ms doubling to 200 ms) up to their own bound, then call their own loader. A filler that
   * fails releases the lease at once; a dead one's lease expires. Redis failing: every caller
   * calls its own loader. `true` waits at most as long as a lease lasts; `{ timeoutMs }` sets
   * the bound. */
  lock?: boolean | WrapLockOptions;
}

/** `wrap()`'s `lock` as an object. */
export interface WrapLockOptions {
  /** How long (ms) a caller waits for another node's load before calling its own loader:
   * more than 0, at most 600 000. */
  timeoutMs: number;
}

/** `stats().cache`: the general cache's counters. */
export interface GeneralCacheStats extends ServiceStats {
  /** Loader values not cached because a `del` (or `invalidateKeys`/`invalidatePattern`) came after their miss read. */
  staleFills: number;
  /** Values served past their fresh time (`staleSec`). */
  staleServed: number;
  /** Background refreshes started (`staleSec`). */
  refreshes: number;
  /** Background refreshes that failed (the loader threw or timed out). */
  refreshErrors: number;
  /** Loader calls past `loaderTimeoutMs`. */
  loaderTimeouts: number;
  /** Loader values that could not be stored (not serialisable, over `maxValueBytes`): answered, not cached. */
  uncacheable: number;
  /** Stored values in no form this cache writes (another client's): read as a miss. */
  corrupt: number;
  /** `wrap` calls answered from the near cache (counted in `hits` too). */
  nearHits: number;
  /** `wrap` callers (`lock`) that waited for another caller's load. */
  lockWaits: number;
  /** `wrap` callers (`lock`) answered by another caller's fill (counted in `hits` too). */
  lockHits: number;
  /** `wrap` callers (`lock`) that waited until their bound and called their own loader. */
  lockTimeouts: number;
}

/** `stats()`, continued: the general cache's counters. */
export interface Stats {
  /** The general cache (`get`, `set`, `del`, `wrap`). */
  cache: GeneralCacheStats;
}

/** The general cache's methods, on the module and on every `Cache`. */
export interface GeneralCacheMethods {
  /** The value under `key` (keyPrefix applied), or `null` on a miss or when Redis failed
   * (counted in `stats().cache.errors`). A key is a non-empty string of at most 512 bytes
   * without control characters (else TypeError `ERR_INVALID_ARG`, RangeError when too long). */
  get<T = unknown>(key: string): Promise<T | null>;
  /** Stores `value` for `ttlSec` (required) → true, or false when Redis failed. Over
   * `maxValueBytes` (its stored form: JSON, or base64 for a Buffer): RangeError
   * `ERR_VALUE_TOO_LARGE`, nothing written. */
  set(key: string, value: CacheValue, options: SetOptions): Promise<boolean>;
  /** Deletes one key or up to 1000 → how many existed (0 when Redis failed). A revocation: a
   * `wrap` load whose miss read came before it is answered to its caller but not cached, on
   * every node. When Redis fails the keys are kept by the revocation journal and replayed;
   * until then this node's `get` misses them and `wrap` asks the loader without caching. */
  del(keyOrKeys: string | readonly string[]): Promise<number>;
  /** Read-through: the cached value, else `loader()` (once for all concurrent callers of this
   * process; with `lock`, across nodes), cached for `ttlSec` unless revoked meanwhile. Redis failing: the loader answers,
   * nothing is cached. A loader's rejection (or `ERR_LOADER_TIMEOUT`) reaches every waiting
   * caller. A loader answering `undefined` is answered, not cached. */
  wrap<T>(key: string, loader: () => T | Promise<T>, options: WrapOptions): Promise<T>;
}

/** Every `Cache` (the module's default instance included) is also a general cache. */
export interface Cache extends GeneralCacheMethods {}

/** {@inheritDoc GeneralCacheMethods.get} */
export declare function get<T = unknown>(key: string): Promise<T | null>;
/** {@inheritDoc GeneralCacheMethods.set} */
export declare function set(key: string, value: CacheValue, options: SetOptions): Promise<boolean>;
/** {@inheritDoc GeneralCacheMethods.del} */
export declare function del(keyOrKeys: string | readonly string[]): Promise<number>;
/** {@inheritDoc GeneralCacheMethods.wrap} */
export declare function wrap<T>(key: string, loader: () => T | Promise<T>, options: WrapOptions): Promise<T>;
