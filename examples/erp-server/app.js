'use strict';
// The example ERP: an Express app using every service of @bisman/cache the way the ERP's guide
// shows, over a tiny in-memory database. `createApp()` configures the cache (back end from
// REDIS_URL, else the embedded memory:// store) and returns the app.
const express = require('express');
const cache = require('./cache');
const { createDb } = require('./db');
const { authRoutes } = require('./routes/auth');
const { apiRoutes } = require('./routes/api');

function createApp({ url = process.env.REDIS_URL || 'memory://erp', keyPrefix = process.env.KEY_PREFIX || 'erp:', approvalWorkMs } = {}) {
  const db = createDb();
  cache.configure({
    url,
    keyPrefix,
    loaders: {
      session: (token) => db.findSession(cache.hashToken(token)),
      userPermissions: (userId) => db.userPermissions(userId),
      rolePermissions: (roleId) => db.rolePermissions(roleId),
    },
  });

  const app = express();
  app.use(express.json());
  app.use('/api/auth', authRoutes(db));
  app.use('/api', apiRoutes(db, { approvalWorkMs }));

  // Guide section 9: Redis health for the load balancer.
  app.get('/health', async (req, res) => {
    const health = await cache.ping();
    res.status(health.enabled ? 200 : 503).json(health);
  });

  app.get('/metrics', (req, res) => {
    res.set('Content-Type', cache.metricsContentType).send(cache.metrics());
  });

  return { app, db, cache, backend: url.replace(/\/\/[^@/]*@/, '//***@') };
}

module.exports = { createApp };
