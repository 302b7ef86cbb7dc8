// Type declarations of @bisman/cache (hand-written façade over the generated binding.d.ts).

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
  userPermissions?: (userId: Id, role?: string) => Promise<unknown> | unknown;
  rolePermissions?: (roleId: Id) => Promise<unknown> | unknown;
}

export interface CacheOptions {
  /** `redis://…`, `rediss://…`, `memory://[name]`; default `process.env.REDIS_URL`; unset: disabled. */
  url?: string;
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
  loaders?: Loaders;
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

/** `(req, res, next)`: Express middleware (it also works on plain node:http requests). It sets
 * `req.rateLimit` (a {@link RateLimitResult}) and the headers `RateLimit-Policy` (`5;w=60`),
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` on every counted response. */
export type RateLimitMiddleware = (req: any, res: any, next: (err?: unknown) => void) => void;

export interface CreateLimiterOptions {
  /** A fixed limit for this middleware (default 100 when only windowSec is given). Without
   * max and windowSec, each endpoint's limit comes from `rateLimits`. */
  max?: number;
  /** Default 60. */
  windowSec?: number;
  /** The client key (default `req.ip`, so Express's `trust proxy` decides). */
  keyGenerator?: (req: any) => string | number | Promise<string | number>;
  /** Answer 503 instead of letting requests pass when Redis fails (default false: fail-open). */
  failClosed?: boolean;
  /** True (or a promise of true) lets the request through uncounted, without headers. */
  skip?: (req: any, res: any) => boolean | Promise<boolean>;
  /** Answers a blocked request instead of the 429 JSON (headers and Retry-After are already set;
   * `req.rateLimit` holds the result). */
  handler?: (req: any, res: any, next: (err?: unknown) => void, options: RateLimitHandlerOptions) => unknown;
  /** The 429 body instead of `{ error: 'Too many requests', retryAfter }`: a string is sent as
   * text, anything else as JSON; a function computes it. */
  message?: unknown | ((req: any, res: any) => unknown | Promise<unknown>);
}

/** What `handler` receives as its 4th argument. */
export interface RateLimitHandlerOptions extends CreateLimiterOptions {
  max: number;
  limit: number;
  windowSec: number;
  windowMs: number;
  statusCode: 429;
  message: unknown;
}

export declare class RateLimiter {
  /** Fixed window per IP and endpoint; fails open (allowed, total 0) when Redis fails. */
  checkLimit(ip: Id, endpoint: string): Promise<RateLimitResult>;
  /** 1 if the counter existed and was removed, else 0. */
  resetLimit(ip: Id, endpoint: string): Promise<number>;
  /** The number of this IP's counters removed (never another IP's, IPv6 included). */
  resetAllLimitsForIp(ip: Id): Promise<number>;
  /** The IP's live counters, by endpoint as given. */
  getIpStatus(ip: Id): Promise<Record<string, IpLimitStatus>>;
  /** Express middleware: login's limit from `rateLimits` (default 5 per 60 s). */
  readonly authLimiter: RateLimitMiddleware;
  /** Express middleware: 3 per 60 s. */
  readonly strictLimiter: RateLimitMiddleware;
  /** Express middleware with its own limit, key and failure policy. */
  createLimiter(options?: CreateLimiterOptions): RateLimitMiddleware;
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

export interface PingResult {
  pong: 'PONG' | null;
  ms: number;
  enabled: boolean;
  error?: string;
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
}

export interface Stats {
  session: ServiceStats;
  permission: ServiceStats;
  rateLimit: RateLimitStats;
  lock: ServiceStats;
  pubsub: ServiceStats;
  inFlight: number;
  enabled: boolean;
}

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
  readonly rateLimiter: RateLimiter;
  configure(options?: CacheOptions): this;
  ping(): Promise<PingResult>;
  isEnabled(): boolean;
  stats(): Stats;
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
export declare const rateLimiter: RateLimiter;
export declare function configure(options?: CacheOptions): void;
export declare function createCache(options?: CacheOptions): Cache;
export declare function ping(): Promise<PingResult>;
export declare function isEnabled(): boolean;
export declare function stats(): Stats;
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
