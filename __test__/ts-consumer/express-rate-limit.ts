// `@bisman/cache/express-rate-limit` as express-rate-limit v8 sees it: the store satisfies its
// `Store` type, and the login-grade createLimiter options type-check.
import { rateLimit, type Store } from 'express-rate-limit';
import RateLimitStoreDefault, { RateLimitStore } from '@bisman/cache/express-rate-limit';
import { rateLimiter, createCache } from '@bisman/cache';
import type { RequestHandler } from 'express';

// An application's own request fields (as passport adds `user`) reach the limiter's callbacks:
// they receive Express's Request, augmentations included.
declare global {
  namespace Express {
    interface Request {
      user?: { id: number };
    }
  }
}

const store: Store = new RateLimitStore({ cache: createCache({ url: 'memory://ts' }), prefix: 'api' });
const other: Store = new RateLimitStoreDefault();
const erl: RequestHandler = rateLimit({ windowMs: 60_000, limit: 10, store, passOnStoreError: true });
const login: RequestHandler = rateLimiter.createLimiter({
  name: 'login',
  max: async (req) => (req.user?.id ? 10 : 5),
  windowSec: 60,
  blockDurationSec: 900,
  skipSuccessfulRequests: true,
  requestWasSuccessful: (req, res) => res.statusCode < 400,
  keyGenerator: rateLimiter.keys.usernameAndIp('username'),
  standardHeaders: 'draft-8',
  legacyHeaders: true,
});
// @ts-expect-error no such header draft
rateLimiter.createLimiter({ standardHeaders: 'draft-9' });
rateLimiter.createLimiter({
  // @ts-expect-error the callbacks' req is Express's Request, not any
  keyGenerator: (req) => req.notAField,
  skip: (req, res) => req.path === '/health' || res.headersSent,
});
void [other, erl, login];
