// The drop-in subpaths: what the ERP's old cache/ files exported.
import { KEY_PATTERNS, sessionKey, rateKey, lockKey, hashToken } from '@bisman/cache/namespaces';
import { sessionCache, getSessionWithFallback, setSession, invalidateUserSessions } from '@bisman/cache/services/sessionCache';
import { permissionCache, hasModulePermission, hasPagePermission } from '@bisman/cache/services/permissionCache';
import { rateLimiter, authLimiter, strictLimiter, createLimiter, checkLimit } from '@bisman/cache/services/rateLimiter';
import { distributedLock, withLock, acquirePaymentLock } from '@bisman/cache/services/distributedLock';
import { pubsub, subscribe, invalidateRolePermissions, onMessage } from '@bisman/cache/services/pubsub';
import type { RequestHandler } from 'express';

async function main(): Promise<void> {
  const pattern: string = KEY_PATTERNS.session;
  const k: string = sessionKey('a') + rateKey('1.2.3.4', '/x') + lockKey('task', 1) + hashToken('t');
  const s = await getSessionWithFallback('token');
  const stored: boolean = await setSession('h', { user_id: 1 });
  const n: number = await invalidateUserSessions(1);
  const has: boolean = (await hasModulePermission(1, 'A')) && (await hasPagePermission(1, 'p', 'view'));
  const mws: RequestHandler[] = [authLimiter, strictLimiter, createLimiter({ max: 1 })];
  const r = await checkLimit('1.2.3.4', '/api/payments');
  const w = await withLock('approval', 1, async () => 42);
  const answer: number = w.result;
  const pay = await acquirePaymentLock(9);
  const sub: boolean = await subscribe();
  const gone: boolean = await invalidateRolePermissions(12);
  const off = onMessage('sessions:invalidate', () => undefined);
  // @ts-expect-error withLock needs a function
  await withLock('approval', 1, 42);
  void [pattern, k, s, stored, n, has, mws, r.remaining, answer, pay.acquired, sub, gone, off, sessionCache, permissionCache, rateLimiter, distributedLock, pubsub];
}
void main;
