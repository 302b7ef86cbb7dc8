'use strict';
// The example ERP: an Express app using every service of @bisman/cache the way the ERP's guide
// shows, over a tiny in-memory database. `createApp()` configures the cache (back end from
// REDIS_URL, else the embedded memory:// store) and returns the app.
const express = require('express');
const cache = require('./cache');
const { createDb } = require('./db');
const { authRoutes } = require('./routes/auth');
const { apiRoutes } = require('./routes/api');
const { adminRoutes } = require('./routes/admin');

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
  // The operator's page (@bisman/cache/admin) behind a SUPER_ADMIN session: routes/admin.js.
  // Mounted before the JSON body parser: the router reads its own small bodies.
  app.use('/admin', adminRoutes(db));
  app.use(express.json());
  app.use('/api/auth', authRoutes(db));
  app.use('/api', apiRoutes(db, { approvalWorkMs }));

  app.get('/', (req, res) => {
    res.type('html').send(HOME);
  });

  // For a load balancer or an orchestrator. Liveness: the process serves (restart it if not).
  app.get('/health/live', (req, res) => {
    res.json({ status: 'ok' });
  });
  // Readiness: send traffic here. Still 200 while Redis is down — every request is then served
  // by the fallbacks (sessions and permissions from the database, limits fail open) — with the
  // cache's state as information. Wiring a Redis check into readiness would take every node
  // out of the pool during the very outage the fallbacks ride through.
  app.get('/health/ready', async (req, res) => {
    const health = await cache.ping();
    res.json({ status: health.enabled ? 'ok' : 'degraded', cache: health });
  });
  // Guide section 9: the cache's own health, for dashboards and alerts (503 while Redis is
  // unusable). Not for a load balancer: see /health/ready.
  app.get('/health', async (req, res) => {
    const health = await cache.ping();
    res.status(health.enabled ? 200 : 503).json(health);
  });

  app.get('/metrics', (req, res) => {
    res.set('Content-Type', cache.metricsContentType).send(cache.metrics());
  });

  return { app, db, cache, backend: url.replace(/\/\/[^@/]*@/, '//***@') };
}

// The page at `/`: what this server is and what to try.
const HOME = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@bisman/cache example ERP</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}</style>
</head><body>
<h1>@bisman/cache — example ERP</h1>
<p>A small Express ERP that uses every service of <code>@bisman/cache</code> the way the ERP's guide
shows: sessions, permission caching, rate limiting, distributed locks and pub/sub invalidation,
over a tiny in-memory database. The cache runs on <code>memory://</code>, or on the Redis of
<code>REDIS_URL</code>.</p>
<h2>Try</h2>
<ul>
<li><code>POST /api/auth/login</code> with <code>{"username":"admin","password":"admin-pass"}</code>
(or <code>hub</code>/<code>hub-pass</code>) → a bearer token;
five logins a minute per address, the sixth is refused with 429.</li>
<li><code>GET /api/me</code>, <code>GET /api/inventory/items</code>, <code>GET /api/reports/sales</code>
with <code>Authorization: Bearer &lt;token&gt;</code>: sessions and permissions from the cache.</li>
<li><code>POST /api/approvals/101/approve</code>: one approval at a time across app nodes (a distributed lock).</li>
<li><code>POST /api/auth/logout</code>: the session is revoked everywhere.</li>
<li><code>npm run demo</code> walks through all of it and prints each step.</li>
</ul>
<h2>Operate</h2>
<ul>
<li><a href="/health/live">/health/live</a>: the process serves (liveness).</li>
<li><a href="/health/ready">/health/ready</a>: send traffic here (readiness; 200 while Redis is down: the fallbacks serve).</li>
<li><a href="/health">/health</a>: the cache's own health, for dashboards (503 while Redis is unusable).</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics.</li>
<li><a href="/admin">/admin</a>: the operator's page (<code>@bisman/cache/admin</code>): health, rates,
a user's sessions, an address's rate limits, locks, recent errors. Sign in as <code>admin</code> at
<a href="/admin/login">/admin/login</a>.</li>
</ul>
</body></html>
`;

module.exports = { createApp };
