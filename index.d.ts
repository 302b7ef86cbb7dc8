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

export interface Stats {
  session: ServiceStats;
  permission: ServiceStats;
  rateLimit: ServiceStats;
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
