// A TypeScript consumer of @bisman/cache (CommonJS output): every export, option and result,
// type-checked with `tsc --strict --noEmit` by __test__/typescript.test.js. The
// `@ts-expect-error` lines must stay errors: they prove the types are not `any`.
import express, { type RequestHandler } from 'express';
import {
  sessionCache,
  permissionCache,
  rateLimiter,
  distributedLock,
  pubsub,
  configure,
  createCache,
  ping,
  isEnabled,
  stats,
  metrics,
  collectMetrics,
  metricsContentType,
  on,
  once,
  off,
  shutdown,
  getSessionWithFallback,
  invalidateSession,
  sessionKey,
  sessionUserKey,
  permUserKey,
  permRoleKey,
  rateKey,
  lockKey,
  hashToken,
  Cache,
  SessionCache,
  DistributedLock,
  PermissionCache,
  PubSub,
  RateLimiter,
  type CacheOptions,
  type SessionData,
  type PermissionSnapshot,
  type RateLimitResult,
  type LockResult,
  type LockStatus,
  type WithLockResult,
  type LockedError,
  type PingResult,
  type Stats,
  type MetricFamily,
  type InvalidationMessage,
  type NearCacheStats,
  type PubSubStatus,
  type IpLimitStatus,
  type Source,
  type ServiceName,
} from '@bisman/cache';

const options: CacheOptions = {
  url: process.env.REDIS_URL,
  keyPrefix: 'erp:prod:',
  nodeId: 'node-1',
  commandTimeoutMs: 1000,
  connectTimeoutMs: 2000,
  maxValueBytes: 512 * 1024,
  nearCacheTtlMs: 5000,
  nearCacheMax: 10000,
  superRoles: ['SUPER_ADMIN'],
  loaders: {
    session: async (token: string): Promise<SessionData | null> => ({ user_id: 1, token_len: token.length }),
    userPermissions: async (userId, role) => ({ role: role ?? 'USER', modules: [`M${userId}`], pages: {} }),
    rolePermissions: (roleId) => (roleId === 1 ? { modules: ['*'] } : null),
  },
  rateLimits: { '/api/auth/login': { max: 5, windowSec: 60 }, default: { max: 100, windowSec: 60 } },
};
configure(options);
// @ts-expect-error commandTimeoutMs is a number
configure({ commandTimeoutMs: '1000' });

const other: Cache = createCache({ url: 'memory://ts' });
const same: Cache = new Cache({ url: 'memory://ts' });

async function sessions(): Promise<void> {
  const ok: boolean = await sessionCache.setSession(hashToken('t'), { user_id: 123, tenant_id: 'x', expires_at: new Date() });
  const cached: SessionData | null = await sessionCache.getSession(hashToken('t'));
  const s = await getSessionWithFallback('t');
  if (s !== null) {
    const source: Source = s.source;
    const fromCache: boolean = source === 'cache';
    void fromCache;
  }
  const s2 = await sessionCache.getSessionWithFallback('t');
  const removed: boolean = await invalidateSession(hashToken('t'));
  const n: number = await sessionCache.invalidateUserSessions(123);
  const list: string[] = await sessionCache.getUserSessions(123);
  // @ts-expect-error session data is an object
  await sessionCache.setSession('h', 'not an object');
  void [ok, cached, s2, removed, n, list];
}

async function permissions(): Promise<void> {
  const has: boolean = await permissionCache.hasModulePermission(1, 'INVENTORY');
  const canEdit: boolean = await permissionCache.hasPagePermission(1, 'inventory-items', 'edit');
  const perms = await permissionCache.getUserPermissionsWithFallback(1, 'SUPER_ADMIN');
  const modules: string[] | undefined = perms?.modules;
  const snap: PermissionSnapshot | null = await permissionCache.getUserPermissions(1);
  const set: boolean = await permissionCache.setUserPermissions(1, { modules: ['A'], pages: { p: ['view'] } }, 120);
  const role = await permissionCache.getRolePermissionsWithFallback(5);
  const roleSnap: PermissionSnapshot | null = await permissionCache.getRolePermissions(5);
  await permissionCache.setRolePermissions(5, { modules: ['*'] });
  const a: boolean = await permissionCache.invalidateUserPermissions(1);
  const b: boolean = await permissionCache.invalidateRolePermissions(5);
  const near: NearCacheStats = permissionCache.nearCacheStats();
  void [has, canEdit, modules, snap, set, role, roleSnap, a, b, near.hits];
}

async function limits(): Promise<void> {
  const r: RateLimitResult = await rateLimiter.checkLimit('192.168.1.1', '/api/auth/login');
  const { allowed, remaining, resetIn, total, limit } = r;
  const status: Record<string, IpLimitStatus> = await rateLimiter.getIpStatus('192.168.1.1');
  const reset: number = await rateLimiter.resetAllLimitsForIp('192.168.1.1');
  const one: number = await rateLimiter.resetLimit('192.168.1.1', '/api/auth/login');
  void [allowed, remaining, resetIn, total, limit, status, reset, one];
}

async function locks(): Promise<void> {
  const lock: LockResult = await distributedLock.acquire('payment', 42, { ttlSec: 30, retries: 3, retryDelayMs: 50 });
  if (lock.acquired) {
    const fence: number = lock.fence;
    await distributedLock.extend('payment', 42, lock.owner, 60);
    await distributedLock.release('payment', 42, lock.owner);
    void fence;
  } else if (lock.error === undefined) {
    const heldBy: string = lock.heldBy;
    void heldBy;
  } else {
    const why: string = lock.error;
    void why;
  }
  const st: LockStatus = await distributedLock.isLocked('payment', 42);
  const w: WithLockResult<number> = await distributedLock.withLock('approval', 7, async ({ signal, owner, fence }) => {
    signal.throwIfAborted();
    return owner.length + fence;
  });
  const n: number = w.result;
  const report: string = await distributedLock.mutex('daily-report', async () => 'done', { waitMs: 5000 });
  await distributedLock.acquireTaskLock(1);
  await distributedLock.acquireApprovalLock(2);
  await distributedLock.acquirePaymentLock(3);
  try {
    await distributedLock.withLock('approval', 7, () => 1);
  } catch (err) {
    const e = err as LockedError;
    if (e.code === 'ELOCKED') void e.heldBy;
  }
  // @ts-expect-error ttlSec is a number
  await distributedLock.acquire('payment', 42, { ttlSec: '30' });
  void [st, n, report];
}

async function messaging(): Promise<void> {
  const subscribed: boolean = await pubsub.subscribe();
  const receivers: number = await pubsub.publishPermissionInvalidation({ type: 'role', roleId: 12 });
  await pubsub.publishSessionInvalidation({ type: 'user', userId: 123 });
  await pubsub.publishCacheInvalidation({ keys: ['dash:stats:2024-01'] });
  await pubsub.invalidateUserPermissions(1);
  await pubsub.invalidateRolePermissions(2);
  await pubsub.invalidateSession('hash');
  await pubsub.invalidateUserSessions(3);
  const k: number = await pubsub.invalidateKeys(['key1', 'key2']);
  const p: number = await pubsub.invalidatePattern('dash:*');
  const off: () => boolean = pubsub.onMessage('permissions:invalidate', async (data: InvalidationMessage) => {
    const origin: string = data.origin;
    void origin;
  });
  // @ts-expect-error only the three invalidation channels exist
  pubsub.onMessage('other', () => undefined);
  pubsub.on('error', (err) => void err);
  const st: PubSubStatus = pubsub.status();
  const up: boolean = pubsub.isConnected();
  await pubsub.shutdown();
  void [subscribed, receivers, k, p, off, st, up];
}

async function health(): Promise<void> {
  const h: PingResult = await ping();
  const enabled: boolean = isEnabled();
  const s: Stats = stats();
  const waits: number = s.lock.waits + s.pubsub.lagMsMax + s.rateLimit.blocked;
  const text: string = metrics();
  const families: MetricFamily[] = collectMetrics();
  const ct: string = metricsContentType;
  const keys: string[] = [sessionKey('abc123'), sessionUserKey(123), permUserKey(123), permRoleKey(5), rateKey('1.2.3.4', '/api/auth/login'), lockKey('task', 99)];
  const fromInstance: string = other.metrics() + same.lockKey('task', 1);
  await other.shutdown();
  await shutdown();
  void [h.pong, enabled, waits, text, families[0]?.samples, ct, keys, fromInstance];
}

// Events for logging.
on('error', (err, service: ServiceName) => console.warn(`cache ${service}: ${err.code} ${err.message}`));
on('circuit', ({ state }) => console.warn(`cache circuit ${state === 'open' ? 'open' : 'closed'}`));
once('reconnect', () => console.info('cache reconnected'));
const onErr = (err: Error): void => void err;
other.on('error', onErr).off('error', onErr);
// @ts-expect-error no such event
on('connect', () => undefined);
// The module-level on/once/off answer the module, as the instance's answer the instance.
const chained: typeof import('@bisman/cache') = on('error', onErr).once('reconnect', () => undefined).off('error', onErr);
const chainedLimiter: RateLimiter = chained.rateLimiter;
const instanceChain: Cache = other.once('circuit', ({ state }) => void state).off('reconnect', () => undefined);
pubsub.once('error', (err, channel) => void [err, channel]).off('error', () => undefined);
// @ts-expect-error the module has no such export
void on('error', onErr).notAnExport;
void [chainedLimiter, instanceChain];
void off;

// The middleware are Express RequestHandlers.
const auth: RequestHandler = rateLimiter.authLimiter;
const strict: RequestHandler = rateLimiter.strictLimiter;
const custom: RequestHandler = rateLimiter.createLimiter({
  max: 10,
  windowSec: 30,
  keyGenerator: (req) => String(req.ip),
  skip: (req) => req.path === '/health',
  failClosed: true,
  handler: (req, res, next, opts) => res.status(opts.statusCode).json({ retry: opts.windowMs }),
  message: { error: 'slow down' },
});
const router = express.Router();
router.post('/login', rateLimiter.authLimiter, (req, res) => {
  res.json({ ok: true });
});
router.post('/register', rateLimiter.strictLimiter, (req, res) => {
  res.json({ ok: true });
});
router.get('/search', custom, (req, res) => {
  res.json({ results: [] });
});
const app = express();
app.use('/api/auth', auth, strict, router);
app.get('/metrics', (req, res) => {
  res.set('Content-Type', metricsContentType).send(metrics());
});

// The classes are exported for instanceof checks.
const classes = [SessionCache, DistributedLock, PermissionCache, PubSub, RateLimiter];
const isLimiter: boolean = rateLimiter instanceof RateLimiter;

void [sessions, permissions, limits, locks, messaging, health, classes, isLimiter];
