'use strict';
// The guide's section 8 chain as an Express app, for `npm run bench` (benchmark/suite.js):
// a rate limiter, the auth middleware (getSessionWithFallback of the Bearer token), a module
// permission check, then a small JSON answer.
//
//   node benchmark/lib/express_app.js <ours|ioredisAuto|ioredis|none> <redis url>
// (`none`: the same chain with stubs that answer at once, no cache: the ceiling of the app)
// prints `listening <port>` when ready; exits on SIGTERM.

const express = require('express');
const { createCache } = require('../..');
const { createBaseline } = require('../baseline');

const [impl, url] = process.argv.slice(2);
const LIMIT = { max: 1e9, windowSec: 60 };

async function main() {
  let cache;
  let limiter;
  let getSession;
  let hasModule;
  let close;
  if (impl === 'ours') {
    cache = createCache({ url, nodeId: 'bench-app' });
    await cache.pubsub.subscribe(); // the near cache answers only while subscribed
    limiter = cache.rateLimiter.createLimiter(LIMIT);
    getSession = (t) => cache.getSessionWithFallback(t);
    hasModule = (u, m) => cache.permissionCache.hasModulePermission(u, m);
    close = () => cache.shutdown();
  } else if (impl === 'none') {
    limiter = (req, res, next) => next();
    const session = { user: { id: 7 }, source: 'cache' };
    getSession = async () => session;
    hasModule = async () => true;
    close = () => {};
  } else {
    cache = createBaseline(url, { autoPipelining: impl === 'ioredisAuto' });
    await cache.ready();
    await cache.pubsub.subscribe();
    limiter = cache.rateLimiter.createLimiter(LIMIT);
    getSession = (t) => cache.getSessionWithFallback(t);
    hasModule = (u, m) => cache.permissionCache.hasModulePermission(u, m);
    close = () => cache.close();
  }

  const authMiddleware = async (req, res, next) => {
    const token = req.headers.authorization?.split(' ')[1];
    if (!token) return res.status(401).json({ error: 'No token provided' });
    const session = await getSession(token);
    if (!session) return res.status(401).json({ error: 'Invalid session' });
    req.user = session.user;
    req.sessionSource = session.source;
    next();
  };
  const requireModule = (module) => async (req, res, next) => {
    if (!(await hasModule(req.user.id, module))) return res.status(403).json({ error: 'Forbidden' });
    next();
  };

  const app = express();
  app.set('etag', false);
  app.get('/api/inventory/items', limiter, authMiddleware, requireModule('INVENTORY'), (req, res) => {
    res.json({ items: [{ id: 1, sku: 'A-1' }], user: req.user.id, source: req.sessionSource });
  });
  const server = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections?.();
    Promise.resolve(close()).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
