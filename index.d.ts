// Type declarations of @bisman/cache (hand-written façade over the generated binding.d.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
// `@types/express` is optional. With it, the middleware and its callbacks take Express's
// `Request` and `Response`; without it these imports do not resolve (the directive silences
// the missing module) and the structural `HttpRequest`/`ServerResponse` below apply instead.
// @ts-ignore
import type { Request as ExpressRequestIfInstalled, Response as ExpressResponseIfInstalled } from 'express';

export interface SessionData {
  user_id?: string | number;
  userId?: string | number;
  expires_at?: string | number | Date;
  expiresAt?: string | number | Date;
  [field: string]: unknown;
}

export type Source = 'cache' | 'database';
export type Id = string | number;

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
  role?: string | number;
  modules?: string[];
  pages?: { [page: string]: string[] };
  [field: string]: unknown;
}

/** The `tls` option of a `rediss://` URL. Every PEM is a string or Buffer, or the path of a
 * PEM file; a bad value is a `TypeError` with `code` `ERR_INVALID_ARG`. */
export interface TlsOptions {
  /** The CA that signs the server's certificate: then the only root trusted. Without it the
   * public web PKI roots are trusted. */
  ca?: string | Buffer;
  /** Client certificate (chain) for mutual TLS; needs `key`. */
  cert?: string | Buffer;
  /** Private key of `cert` (unencrypted PEM: PKCS#8, PKCS#1 or SEC1); needs `cert`. */
  key?: string | Buffer;
  /** Name sent (SNI) and checked against the server's certificate (a DNS name or an IP
   * address); default the URL's host. */
  servername?: string;
  /** Default true. `false` accepts ANY server certificate (self-signed, wrong name, expired):
   * for tests only — it gives up the protection TLS exists for. */
  rejectUnauthorized?: boolean;
}

export interface CacheOptions {
  /** `redis://…`, `rediss://…`, `unix:///path` or `redis+unix:///path` (`?db=`, `?user=`,
   * `?pass=`), `memory://[name]`; default `process.env.REDIS_URL`; unset: disabled. */
  url?: string;
  /** Redis Cluster: seed node URLs `['redis://h:7000', …]` (instead of `url`). */
  cluster?: string[];
  /** Redis Sentinel: the monitored primary's name and the sentinels' URLs (instead of `url`). */
  sentinel?: { masterName: string; nodes: string[] };
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
  /** Longest reply accepted from Redis, 1024 … 512 MiB and at least `maxValueBytes` (default
   * 512 MiB, Redis' `proto-max-bulk-len`); a longer one drops the connection
   * (`ECACHEUNAVAILABLE`). */
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
  /** TLS settings, `rediss://` only (refused with a `TypeError` with any other URL). A TLS
   * URL never falls back to plaintext. */
  tls?: TlsOptions;
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

export interface RateLimit {
  /** Hits allowed per window (whole number, 0 … 1e9). */
  max: number;
  /** Window length in whole seconds (1 … 604800). */
  windowSec: number;
}

export interface RateLimits {
  default?: RateLimit;
  [endpoint: string]: RateLimit | undefined;
}

export interface RateLimitResult {
  allowed: boolean;
  remaining: number;
  /** Whole seconds until the window ends. */
  resetIn: number;
  /** Hits in this window, this one included. */
  total: number;
  limit: number;
}

export interface IpLimitStatus {
  current: number;
  limit: number;
  resetIn: number;
}

/** A shape no real type has: an import that did not resolve (an error type, assignable to
 * everything) is the only thing that matches it. */
interface Unresolved {
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
  max: number;
  limit: number;
  windowSec: number;
  windowMs: number;
  statusCode: 429;
  message: unknown;
}

export declare class RateLimiter {
  /** Fixed window per IP and endpoint; fails open (allowed, total 0) when Redis fails. An
   * address counts under its bucket (`::ffff:1.2.3.4` → `1.2.3.4`; IPv6 by `ipv6Subnet`). */
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

export interface LockGranted {
  acquired: true;
  /** `nodeId:pid:<32 hex digits>` (128 bits from the OS CSPRNG). Needed to release/extend. */
  owner: string;
  /** Fencing token: grows with every grant of this lock. Pass it to the storage you protect. */
  fence: number;
  /** The TTL granted, in seconds. */
  ttl: number;
}

export interface LockBusy {
  acquired: false;
  error?: undefined;
  /** Owner token of the current holder. */
  heldBy: string;
  /** Seconds the holder's lock has left (whole seconds, rounded up; -1: no expiry). */
  ttl: number;
  ttlMs: number;
}

/** Redis down, slow or not configured: the lock is refused, never assumed. */
export interface LockRefused {
  acquired: false;
  /** Nobody is known to hold it: absent (declared so `lock.heldBy` compiles after `!lock.acquired`). */
  heldBy?: null;
  error: string;
  code: string;
}

export type LockResult = LockGranted | LockBusy | LockRefused;

export interface LockStatus {
  locked: boolean;
  owner?: string;
  /** Whole seconds left, rounded up. */
  ttl?: number;
  ttlMs?: number;
  /** Set (with `locked: false`) when the back end could not answer. */
  error?: string;
  code?: string;
}

export interface LockContext {
  /** Aborts (reason: an Error with `code: 'ELOCKLOST'`) when the lock is found lost. */
  signal: AbortSignal;
  owner: string;
  fence: number;
}

export interface WithLockResult<T> {
  result: T;
  owner: string;
  fence: number;
  /** True when the watchdog found the lock lost while `fn` ran. */
  lost: boolean;
}

/** Thrown by withLock/mutex when the lock stays busy. */
export interface LockedError extends Error {
  code: 'ELOCKED';
  heldBy: string;
  ttl: number;
  resource: Id;
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
  readonly resource: Id;
  readonly id: Id;
}

export interface SemaphoreOptions {
  /** Default TTL of a permit in seconds (30): a holder that crashed frees its permit after it. */
  ttlSec?: number;
  /** Default wait for a free permit, in ms (0: one attempt). */
  waitMs?: number;
}

export interface PermitGranted {
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
  error?: undefined;
}

export interface PermitBusy {
  acquired: false;
  /** Permits taken (all of them). */
  held: number;
  /** Ms until the earliest holder's TTL ends (it may release sooner). */
  retryInMs: number;
  error?: undefined;
}

/** Redis down, slow or not configured: no permit is granted. */
export interface PermitRefused {
  acquired: false;
  error: string;
  code: string;
}

export type PermitResult = PermitGranted | PermitBusy | PermitRefused;

export interface SemaphoreStatus {
  /** Live holders. */
  held: number;
  permits: number;
  /** Ms until the earliest holder's TTL ends; -1 when there is none. */
  nextExpiryMs?: number;
  /** Set (with `held: 0`) when the back end could not answer. */
  error?: string;
  code?: string;
}

/** A permit held until `release()` or the end of an `await using` block (see {@link LockHandle}). */
export interface PermitHandle extends HeldGrant {
  readonly semaphore: Id;
}

/** Thrown by withPermit/permit when every permit stays taken. */
export interface SemaphoreFullError extends Error {
  code: 'ELOCKED';
  semaphore: Id;
  held: number;
  permits: number;
  retryInMs: number;
}

/**
 * A fenced counting semaphore on `sem:{name}`: at most `permits` holders at once on the back
 * end (one Lua script per attempt). Holders expire by their TTL; fences grow with every grant.
 */
export interface Semaphore {
  readonly name: Id;
  readonly permits: number;
  /** One permit, or why not; never throws for an outage. No watchdog: it frees itself at its TTL. */
  acquire(options?: LockOptions): Promise<PermitResult>;
  /** True only if `owner` held a live permit and this call freed it. */
  release(owner: string): Promise<boolean>;
  /** True only if `owner` still holds a permit; it now expires `ttlSec` from now. */
  extend(owner: string, ttlSec?: number): Promise<boolean>;
  status(): Promise<SemaphoreStatus>;
  /**
   * Runs `fn` holding a permit, as `withLock` does (watchdog, always released, rethrows);
   * {@link SemaphoreFullError} (`ELOCKED`) when none frees within `waitMs`.
   */
  withPermit<T>(fn: (ctx: LockContext) => T | Promise<T>, options?: LockOptions): Promise<WithLockResult<Awaited<T>>>;
  /** A permit as a handle with the watchdog: `await using p = await sem.permit()`. */
  permit(options?: LockOptions): Promise<PermitHandle>;
}

export declare class DistributedLock {
  acquire(resource: Id, id: Id, options?: LockOptions): Promise<LockResult>;
  /** Compare-and-delete: true only if `owner` still held the lock. */
  release(resource: Id, id: Id, owner: string): Promise<boolean>;
  /** Compare-and-expire: true only if `owner` still holds the lock (default 30 s). */
  extend(resource: Id, id: Id, owner: string, ttlSec?: number): Promise<boolean>;
  isLocked(resource: Id, id: Id): Promise<LockStatus>;
  /**
   * Runs `fn` under the lock, extending it every ttl/3; always releases; rethrows what `fn`
   * throws; throws a {@link LockedError} (`ELOCKED`) when the lock stays busy, or an error with
   * the back end's code when Redis is unavailable.
   */
  withLock<T>(resource: Id, id: Id, fn: (ctx: LockContext) => T | Promise<T>, options?: LockOptions): Promise<WithLockResult<Awaited<T>>>;
  /** `withLock` on `lock:mutex:{name}` that waits its turn (`waitMs`, default 10 s) → what `fn` returns. */
  mutex<T>(name: Id, fn: (ctx: LockContext) => T | Promise<T>, options?: LockOptions): Promise<Awaited<T>>;
  acquireTaskLock(id: Id, options?: LockOptions): Promise<LockResult>;
  acquireApprovalLock(id: Id, options?: LockOptions): Promise<LockResult>;
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

export interface NearCacheStats {
  enabled: boolean;
  /** True only while the pub/sub subscription is confirmed. */
  trusted: boolean;
  /** Snapshots held by the native near cache. */
  size: number;
  max: number;
  ttlMs: number;
  /** Answers from process memory (both layers: the JS copy and the native near cache). */
  hits: number;
  misses: number;
  fills: number;
  refusedFills: number;
  invalidations: number;
  /** The JS-side copy in front of it: live entries, and the answers it gave with no native call. */
  l1: { size: number; hits: number };
}

export declare class PermissionCache {
  /** Cache only (near cache, then Redis): the snapshot or null. */
  getUserPermissions(userId: Id): Promise<PermissionSnapshot | null>;
  /** `perm:user:{userId}` for `ttlSec` (60…300, default 300; else RangeError) → true, false if Redis failed. */
  setUserPermissions(userId: Id, snapshot: PermissionSnapshot, ttlSec?: number): Promise<boolean>;
  /** On a miss asks `loaders.userPermissions(userId, role)` once for concurrent callers. */
  getUserPermissionsWithFallback(userId: Id, role?: Id): Promise<(PermissionSnapshot & { source: Source }) | null>;
  hasModulePermission(userId: Id, module: string): Promise<boolean>;
  hasPagePermission(userId: Id, page: string, action: string): Promise<boolean>;
  /** Deletes, drops the local near copy, broadcasts → true if a snapshot was removed. */
  invalidateUserPermissions(userId: Id): Promise<boolean>;
  getRolePermissions(roleId: Id): Promise<PermissionSnapshot | null>;
  /** `perm:role:{roleId}` for 5 minutes. */
  setRolePermissions(roleId: Id, snapshot: PermissionSnapshot): Promise<boolean>;
  getRolePermissionsWithFallback(roleId: Id): Promise<(PermissionSnapshot & { source: Source }) | null>;
  /** Deletes, drops the role and every user snapshot from near caches, broadcasts. */
  invalidateRolePermissions(roleId: Id): Promise<boolean>;
  nearCacheStats(): NearCacheStats;
}

export type Channel = 'permissions:invalidate' | 'sessions:invalidate' | 'cache:invalidate';

/** A message as received: what was published, plus `origin` (nodeId) and `ts` (epoch ms). */
export interface InvalidationMessage {
  origin: string;
  ts: number;
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

export interface PubSubStatus {
  subscribed: boolean;
  connected: boolean;
  resubscribes: number;
  /** Messages dropped because the handlers did not keep up. */
  dropped: number;
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
  outOfOrder: number;
  senderRestarts: number;
  lateJoins: number;
  /** Senders forgotten beyond the 4,096 tracked. */
  forgottenSenders: number;
  /** Times the near caches were dropped by gap detection. */
  nearDrops: number;
  /** Senders tracked now. */
  senders: number;
}

export declare class PubSub {
  /** Idempotent → true once subscribed, false if not within connectTimeoutMs (it keeps trying). Never rejects for back-end reasons. */
  subscribe(): Promise<boolean>;
  isConnected(): boolean;
  status(): PubSubStatus;
  /** → a function that removes the handler. A throwing handler is reported (`'error'` event, else stderr), never fatal. */
  onMessage(channel: Channel, handler: (data: InvalidationMessage, channel: Channel) => unknown): () => boolean;
  on(event: 'error', listener: (err: unknown, channel: Channel) => void): this;
  once(event: 'error', listener: (err: unknown, channel: Channel) => void): this;
  off(event: 'error', listener: (err: unknown, channel: Channel) => void): this;
  /** → the number of subscribers that received it. */
  publishPermissionInvalidation(msg: Record<string, unknown>): Promise<number>;
  publishSessionInvalidation(msg: Record<string, unknown>): Promise<number>;
  publishCacheInvalidation(msg: Record<string, unknown>): Promise<number>;
  invalidateUserPermissions(userId: Id): Promise<boolean>;
  invalidateRolePermissions(roleId: Id): Promise<boolean>;
  /** `sessionId` = the token hash the session is stored under. */
  invalidateSession(sessionId: string): Promise<boolean>;
  invalidateUserSessions(userId: Id): Promise<number>;
  /** Exact (unprefixed) keys → how many existed. */
  invalidateKeys(keys: string[]): Promise<number>;
  /** SCAN + UNLINK with keyPrefix applied → keys removed. Empty or all-`*` patterns: TypeError. */
  invalidatePattern(pattern: string): Promise<number>;
  /** Closes the subscriber connection of this instance. */
  shutdown(): Promise<void>;
}

export interface PingResult {
  pong: 'PONG' | null;
  ms: number;
  enabled: boolean;
  error?: string;
  /** The circuit breaker after this ping (a successful ping closes it). */
  circuit: 'closed' | 'open' | 'half-open';
  /** With `error: 'revocations pending replay'`: the revocations this node still has to replay. */
  pendingRevocations?: number;
}

export interface ServiceStats {
  hits: number;
  misses: number;
  fallbacks: number;
  loaderCalls: number;
  errors: number;
}

export interface RateLimitStats extends ServiceStats {
  /** Hits answered allowed / blocked (429 or, failing closed, 503). */
  allowed: number;
  blocked: number;
  /** Blocked hits answered by the in-process block cache, with no Redis call. */
  blockCacheHits: number;
  /** Hits decided by the in-process insurance limiter while Redis failed. */
  insured: number;
}

export interface LockStats extends ServiceStats {
  /** Attempts retried after waiting (busy lock or back-end failure). */
  waits: number;
  /** Locks found lost while their holder ran. */
  lost: number;
}

export interface PubSubStats extends ServiceStats {
  messages: number;
  handlerErrors: number;
  /** Delivery lag of received messages (receive time − sender `ts`), in ms. */
  lagMsSum: number;
  lagMsMax: number;
  lagSamples: number;
  /** As in `pubsub.status()`. */
  dropped: number;
  rejected: PubSubRejected;
  gaps: number;
  outOfOrder: number;
  senderRestarts: number;
  lateJoins: number;
  forgottenSenders: number;
  nearDrops: number;
  unnumbered: number;
}

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
  sessions: number;
  userSessions: number;
  userPermissions: number;
  rolePermissions: number;
  /** True after an overflow, until the replay: every read of this node skips the cache. */
  overflowed: boolean;
  /** Revocations that did not fit (revocationJournalMax): lost for the other nodes. */
  journalOverflow: number;
  recorded: number;
  replayed: number;
  replayRounds: number;
  replayFailures: number;
  /** Entries refused as input on replay (never expected). */
  dropped: number;
  /** revocationJournalMax */
  max: number;
}

export interface Stats {
  session: SessionStats;
  permission: PermissionStats;
  rateLimit: RateLimitStats;
  lock: LockStats;
  pubsub: PubSubStats;
  inFlight: number;
  enabled: boolean;
  /** The circuit breaker in front of Redis (read without a round trip). */
  circuit: 'closed' | 'open' | 'half-open';
  revocation: RevocationStats;
}

/** One Prometheus metric family of {@link Cache.collectMetrics}: samples are
 * `[nameSuffix, labels, value]` (suffix `''`, `'_sum'`/`'_count'` for summaries and
 * histograms, `'_bucket'` for a histogram's buckets, whose labels add `le`). */
export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge' | 'summary' | 'histogram';
  help: string;
  /** The label names its samples carry (e.g. `['service']`, `['endpoint', 'decision']`). */
  labelNames: string[];
  samples: Array<[suffix: string, labels: Record<string, string>, value: number]>;
}

export type ServiceName = 'session' | 'permission' | 'rateLimit' | 'lock' | 'pubsub';

/** The events of a cache instance (and of the module's default instance), for logging. */
export interface CacheEvents {
  /** A back-end failure (Redis down, slow, refused) that a call of `service` absorbed by
   * falling back; one per failed operation. Listening never changes what the call answers. */
  error: [err: Error & { code?: string }, service: ServiceName];
  /** `'open'`: the back end became unavailable (isEnabled() false, reads go to the loaders);
   * `'closed'`: it is back. Polled every 100 ms while someone listens. */
  circuit: [event: { state: 'open' | 'closed' }];
  /** The back end answers again after being down. */
  reconnect: [];
}

export type CacheListener<E extends keyof CacheEvents> = (...args: CacheEvents[E]) => void;

export interface KeyBuilders {
  sessionKey(tokenHash: Id): string;
  sessionUserKey(userId: Id): string;
  permUserKey(userId: Id): string;
  permRoleKey(roleId: Id): string;
  rateKey(ip: Id, endpoint: string): string;
  lockKey(resource: Id, id: Id): string;
  /** SHA-256 hex of a raw token. */
  hashToken(token: string): string;
}

export declare class Cache implements KeyBuilders {
  constructor(options?: CacheOptions);
  readonly sessionCache: SessionCache;
  readonly distributedLock: DistributedLock;
  readonly permissionCache: PermissionCache;
  readonly pubsub: PubSub;
  readonly rateLimiter: RateLimiter;
  configure(options?: CacheOptions): this;
  ping(): Promise<PingResult>;
  isEnabled(): boolean;
  stats(): Stats;
  /** Prometheus text (exposition format 0.0.4) of this instance's counters. */
  metrics(): string;
  /** The same counters as data, e.g. for a prom-client collector. */
  collectMetrics(): MetricFamily[];
  /** `'text/plain; version=0.0.4; charset=utf-8'`: the Content-Type of {@link metrics}. */
  readonly metricsContentType: string;
  on<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): this;
  once<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): this;
  off<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): this;
  listenerCount(event: keyof CacheEvents): number;
  shutdown(): Promise<void>;
  getSessionWithFallback(token: string): Promise<(SessionData & { source: Source }) | null>;
  invalidateSession(tokenHash: string): Promise<boolean>;
  sessionKey(tokenHash: Id): string;
  sessionUserKey(userId: Id): string;
  permUserKey(userId: Id): string;
  permRoleKey(roleId: Id): string;
  rateKey(ip: Id, endpoint: string): string;
  lockKey(resource: Id, id: Id): string;
  hashToken(token: string): string;
}

export declare const sessionCache: SessionCache;
export declare const distributedLock: DistributedLock;
export declare const permissionCache: PermissionCache;
export declare const pubsub: PubSub;
export declare const rateLimiter: RateLimiter;
export declare function configure(options?: CacheOptions): void;
export declare function createCache(options?: CacheOptions): Cache;
export declare function ping(): Promise<PingResult>;
export declare function isEnabled(): boolean;
export declare function stats(): Stats;
/** Prometheus text (exposition format 0.0.4) of the default instance's counters. */
export declare function metrics(): string;
export declare function collectMetrics(): MetricFamily[];
export declare const metricsContentType: string;
/** Listens to an event of the default instance ('error', 'circuit', 'reconnect'). */
export declare function on<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): typeof import('./index');
export declare function once<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): typeof import('./index');
export declare function off<E extends keyof CacheEvents>(event: E, listener: CacheListener<E>): typeof import('./index');
export declare function shutdown(): Promise<void>;
export declare function getSessionWithFallback(token: string): Promise<(SessionData & { source: Source }) | null>;
export declare function invalidateSession(tokenHash: string): Promise<boolean>;
export declare function sessionKey(tokenHash: Id): string;
export declare function sessionUserKey(userId: Id): string;
export declare function permUserKey(userId: Id): string;
export declare function permRoleKey(roleId: Id): string;
export declare function rateKey(ip: Id, endpoint: string): string;
export declare function lockKey(resource: Id, id: Id): string;
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
  service: 'session' | 'permissions' | 'rateLimit' | 'lock' | 'pubsub' | 'health';
  /** The method called: `'getSession'`, `'checkLimit'`, `'acquire'`, `'ping'`, … */
  operation: string;
  /** The key's family (`'session'`, `'perm:user'`, `'rate'`, `'lock:approval'`, a channel name);
   * absent for operations on no key. A lock resource with a digit shows as `'lock'`. */
  keyFamily?: string;
  /** Set when the back end is one `redis://` or `rediss://` server. */
  serverAddress?: string;
  serverPort?: number;
  dbIndex?: number;
  /** The rejection (or synchronous throw) of a failing call. */
  error?: unknown;
}
