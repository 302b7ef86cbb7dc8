// The ESM consumer: the default export is the module object, named exports the singletons.
import cache, { rateLimiter, distributedLock, type RateLimitResult } from '@bisman/cache';
import type { RequestHandler } from 'express';

cache.configure({ url: 'memory://esm' });
const r: RateLimitResult = await rateLimiter.checkLimit('1.2.3.4', '/api/auth/login');
const same: boolean = cache.rateLimiter === rateLimiter && cache.distributedLock === distributedLock;
const mw: RequestHandler = cache.rateLimiter.authLimiter;
const text: string = cache.metrics();
// @ts-expect-error not an export
cache.notAnExport();
void [r, same, mw, text];
