'use strict';
// The operator's page of `@bisman/cache/admin`: one request handler, mountable as Express
// middleware (`app.use('/admin', adminRouter({ cache, authorize }))`) or called from a plain
// `http` server, that serves a page, its script and style, a JSON API and a server-sent event
// stream. It needs no Express of its own: it reads `req.url`, `req.method`, `req.headers` and
// `req.baseUrl` (set by Express when mounted) and answers with plain `res.writeHead`/`res.end`.
//
// Every request is checked with the app's `authorize(req)` first; only `true` lets it through.
// Every action is a POST with a JSON body and passes a same-origin check (see sameOrigin).
// Every answer the API gives to request input is JSON; bad input is a 400, a failed back end
// a 503, never an exception.

const fs = require('fs');
const path = require('path');
const { typeError, rangeError } = require('../errors');
const { ErrorRing } = require('./errors_ring');

const ASSETS = {
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
};
const CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const MAX_BODY_BYTES = 4096;
const MAX_INPUT_CHARS = 256;
const TICK_MS = 1000;
// A live stream re-asks authorize() every this many ticks and ends when it says no.
const REAUTHORIZE_TICKS = 5;

let assetCache = null;
function assets() {
  if (assetCache === null) {
    const read = (f) => fs.readFileSync(path.join(__dirname, f), 'utf8');
    assetCache = { page: read('page.html') };
    for (const [route, { file }] of Object.entries(ASSETS)) assetCache[route] = read(file);
  }
  return assetCache;
}

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);

// Request input that the handlers refuse with a 400.
class BadInput extends Error {}

function send(res, status, body, headers = {}) {
  if (res.headersSent) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? headers['Content-Type'] || 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': CSP,
    'Referrer-Policy': 'no-referrer',
    ...headers,
  });
  res.end(text);
}

// A string field of request input: present, at most MAX_INPUT_CHARS, no control characters;
// an id may also be a safe integer.
function field(source, name, { optional = false, id = false } = {}) {
  const v = source[name];
  if (v === undefined || v === null || v === '') {
    if (optional) return undefined;
    throw new BadInput(`${name} is required`);
  }
  if (typeof v !== 'string' && !(id && Number.isSafeInteger(v))) throw new BadInput(`${name} must be a string${id ? ' or an integer' : ''}`);
  const s = String(v).trim();
  if (s === '' || s.length > MAX_INPUT_CHARS) throw new BadInput(`${name} must be 1 to ${MAX_INPUT_CHARS} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new BadInput(`${name} must not hold control characters`);
  return s;
}

// CSRF defence for the POST actions: the request must come from the page's own origin.
// Browsers send `Sec-Fetch-Site` (and `Origin` on every cross-origin POST); a request that
// carries neither did not come from a browser page and cannot ride a browser's credentials.
function sameOrigin(req) {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

// The JSON body of a POST: what a body parser mounted earlier left in req.body, else read here
// (at most MAX_BODY_BYTES).
function readJson(req) {
  const type = String(req.headers['content-type'] || '');
  if (!/^application\/json\b/i.test(type)) return Promise.reject(new BadInput('the body must be application/json'));
  if (req.readableEnded) {
    const b = req.body;
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return Promise.reject(new BadInput('the body must be a JSON object'));
    return Promise.resolve(b);
  }
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    const onData = (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.off('data', onData);
        req.resume();
        reject(new BadInput(`the body is over ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('error', () => reject(new BadInput('the body could not be read')));
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      try {
        const b = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new Error();
        resolve(b);
      } catch {
        reject(new BadInput('the body must be a JSON object'));
      }
    });
  });
}

// The app's own record of a session failed: answered 500, the cache left as it is.
class HookFailed extends Error {}
async function appHook(fn) {
  try {
    await fn();
  } catch {
    throw new HookFailed("the app's session store could not delete the session(s)");
  }
}

// The library refuses bad ids with a TypeError/RangeError carrying a code: request input here.
function isInputError(err) {
  return err instanceof BadInput || ((err instanceof TypeError || err instanceof RangeError) && typeof err.code === 'string');
}

function checkOptions(options) {
  if (options === null || typeof options !== 'object') throw typeError('adminRouter needs an options object: { cache, authorize }');
  const { authorize, basePath, maxClients = 4, deleteSession, deleteUserSessions } = options;
  if (typeof authorize !== 'function') {
    throw typeError('adminRouter needs authorize(req) → boolean | Promise<boolean>: the page is never served without the app\'s own admin check');
  }
  let { cache } = options;
  if (cache === undefined) cache = require('../../index.js');
  const needs = ['ping', 'isEnabled', 'stats', 'on', 'off'];
  if (cache === null || typeof cache !== 'object' || needs.some((m) => typeof cache[m] !== 'function') || !cache.sessionCache || !cache.rateLimiter || !cache.distributedLock) {
    throw typeError('cache must be a cache instance (createCache()) or the module');
  }
  if (basePath !== undefined && (typeof basePath !== 'string' || !/^(\/[A-Za-z0-9._~-]+)*$/.test(basePath))) {
    throw typeError("basePath must be a path like '/admin' (no trailing slash)");
  }
  if (!Number.isInteger(maxClients) || maxClients < 1 || maxClients > 100) throw rangeError('maxClients must be an integer from 1 to 100');
  for (const [name, fn] of [['deleteSession', deleteSession], ['deleteUserSessions', deleteUserSessions]]) {
    if (fn !== undefined && typeof fn !== 'function') throw typeError(`${name} must be a function`);
  }
  return { cache, authorize, basePath, maxClients, deleteSession, deleteUserSessions };
}

/**
 * The operator's page and API as one request handler (see admin.d.ts and docs/admin.md).
 * Throws a TypeError (code ERR_INVALID_ARG) without an `authorize` function.
 */
function adminRouter(options) {
  const { cache, authorize, basePath, maxClients, deleteSession, deleteUserSessions } = checkOptions(options);
  const errors = new ErrorRing(50);
  const onError = (err, service) => errors.push(err, service);
  cache.on('error', onError);

  const near = () => {
    const pc = cache.permissionCache;
    try {
      return pc && typeof pc.nearCacheStats === 'function' ? pc.nearCacheStats() : null;
    } catch {
      return null;
    }
  };

  // The figures of one tick: health, circuit, counters, near cache, recent errors.
  async function state() {
    const health = await cache.ping();
    const stats = cache.stats();
    let pubsub = null;
    try {
      if (cache.pubsub && typeof cache.pubsub.status === 'function') {
        const s = cache.pubsub.status();
        pubsub = { subscribed: s.subscribed, connected: s.connected, resubscribes: s.resubscribes, nearDrops: s.nearDrops };
      }
    } catch {
      pubsub = null;
    }
    const counters = {};
    for (const service of ['session', 'permission', 'rateLimit', 'lock', 'pubsub']) {
      const s = stats[service] || {};
      counters[service] = { hits: s.hits || 0, misses: s.misses || 0, fallbacks: s.fallbacks || 0, errors: s.errors || 0 };
    }
    return {
      at: Date.now(),
      health: { pong: health.pong, ms: health.ms, enabled: health.enabled, error: health.error, circuit: health.circuit },
      enabled: cache.isEnabled(),
      circuit: stats.circuit,
      inFlight: stats.inFlight,
      counters,
      rateLimit: { allowed: stats.rateLimit ? stats.rateLimit.allowed : 0, blocked: stats.rateLimit ? stats.rateLimit.blocked : 0 },
      lock: { waits: stats.lock ? stats.lock.waits : 0, lost: stats.lock ? stats.lock.lost : 0 },
      revocation: stats.revocation ? { pending: stats.revocation.pending, replayed: stats.revocation.replayed } : null,
      near: near(),
      pubsub,
      errors: errors.list(),
    };
  }

  // The live stream: one shared timer while someone listens, at most maxClients listeners.
  const clients = new Set();
  let timer = null;
  let ticks = 0;
  let ticking = false;
  const endClient = (c) => {
    if (!clients.delete(c)) return;
    c.res.end();
    if (clients.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
  const write = (c, data) => {
    if (c.blocked) return; // a slow reader skips ticks instead of growing a buffer
    if (!c.res.write(`data: ${data}\n\n`)) {
      c.blocked = true;
      c.res.once('drain', () => (c.blocked = false));
    }
  };
  async function tick() {
    if (ticking) return;
    ticking = true;
    try {
      ticks++;
      if (ticks % REAUTHORIZE_TICKS === 0) {
        await Promise.all(
          [...clients].map(async (c) => {
            if ((await allowed(c.req)) !== true) endClient(c);
          }),
        );
      }
      if (clients.size === 0) return;
      const data = JSON.stringify(await state());
      for (const c of clients) write(c, data);
    } catch {
      // state() answers for a failed back end; anything else skips this tick
    } finally {
      ticking = false;
    }
  }

  async function allowed(req) {
    try {
      return (await authorize(req)) === true;
    } catch {
      return 'failed';
    }
  }

  async function events(req, res) {
    if (clients.size >= maxClients) return send(res, 503, { error: `at most ${maxClients} live streams` }, { 'Retry-After': '5' });
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': CSP,
    });
    const c = { req, res, blocked: false };
    clients.add(c);
    res.on('close', () => endClient(c));
    res.write('retry: 3000\n\n');
    if (timer === null) {
      timer = setInterval(tick, TICK_MS);
      timer.unref();
    }
    try {
      const data = JSON.stringify(await state());
      if (clients.has(c)) write(c, data);
    } catch {
      // the next tick tries again
    }
  }

  // Routes under the mount point: [method, path] → handler(req, res, query) → [status, body].
  const api = {
    'GET /api/state': async () => [200, await state()],
    'GET /api/sessions': async (req, q) => {
      const userId = field(q, 'userId', { id: true });
      const hashes = await cache.sessionCache.getUserSessions(userId);
      const sessions = await Promise.all(
        hashes.slice(0, 200).map(async (tokenHash) => {
          const s = await cache.sessionCache.getSession(tokenHash);
          return { tokenHash, expiresAt: s && typeof s.expires_at === 'string' ? s.expires_at : null, present: s !== null };
        }),
      );
      return [200, { userId, count: hashes.length, sessions }];
    },
    'POST /api/sessions/revoke': async (req, q, body) => {
      const tokenHash = field(body, 'tokenHash');
      if (deleteSession) await appHook(() => deleteSession(tokenHash));
      return [200, { revoked: await cache.invalidateSession(tokenHash) }];
    },
    'POST /api/sessions/revoke-all': async (req, q, body) => {
      const userId = field(body, 'userId', { id: true });
      if (deleteUserSessions) await appHook(() => deleteUserSessions(userId));
      return [200, { revoked: await cache.sessionCache.invalidateUserSessions(userId) }];
    },
    'GET /api/limits': async (req, q) => {
      const ip = field(q, 'ip');
      return [200, { ip, endpoints: await cache.rateLimiter.getIpStatus(ip) }];
    },
    'POST /api/limits/reset': async (req, q, body) => {
      const ip = field(body, 'ip');
      const endpoint = field(body, 'endpoint', { optional: true });
      const removed = endpoint === undefined ? await cache.rateLimiter.resetAllLimitsForIp(ip) : await cache.rateLimiter.resetLimit(ip, endpoint);
      return [200, { ip, endpoint: endpoint ?? null, removed }];
    },
    'GET /api/locks': async (req, q) => {
      const resource = field(q, 'resource');
      const id = field(q, 'id', { id: true });
      const s = await cache.distributedLock.isLocked(resource, id);
      return [200, { resource, id, ...s }];
    },
  };

  async function handle(req, res, next) {
    let url;
    try {
      url = new URL(req.url || '/', 'http://admin.invalid');
    } catch {
      return send(res, 400, { error: 'bad request URL' });
    }
    let route = url.pathname;
    if (req.baseUrl === undefined && basePath) {
      if (route !== basePath && !route.startsWith(basePath + '/')) return next ? next() : send(res, 404, { error: 'not found' });
      route = route.slice(basePath.length);
    }
    if (route === '') route = '/';
    const ok = await allowed(req);
    if (ok === 'failed') return send(res, 500, { error: 'authorization check failed' });
    if (!ok) {
      const hasCredentials = req.headers.authorization !== undefined || req.headers.cookie !== undefined;
      return hasCredentials ? send(res, 403, { error: 'Forbidden' }) : send(res, 401, { error: 'Unauthorized' });
    }
    const base = basePath ?? req.baseUrl ?? '';
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (method === 'GET' && (route === '/' || route === '/index.html')) {
      return send(res, 200, assets().page.replaceAll('{{BASE}}', escapeHtml(base)), { 'Content-Type': 'text/html; charset=utf-8' });
    }
    if (method === 'GET' && ASSETS[route]) return send(res, 200, assets()[route], { 'Content-Type': ASSETS[route].type });
    if (method === 'GET' && route === '/api/events') return events(req, res);
    const handler = api[`${method} ${route}`];
    if (!handler) {
      const known = Object.keys(api).some((k) => k.endsWith(' ' + route));
      return known ? send(res, 405, { error: 'method not allowed' }) : send(res, 404, { error: 'not found' });
    }
    try {
      let body = {};
      if (method === 'POST') {
        if (!sameOrigin(req)) return send(res, 403, { error: 'cross-origin request refused' });
        body = await readJson(req);
      }
      const query = Object.fromEntries(url.searchParams);
      const [status, answer] = await handler(req, query, body);
      return send(res, status, answer);
    } catch (err) {
      if (isInputError(err)) return send(res, 400, { error: err.message, code: err.code });
      if (err instanceof HookFailed) return send(res, 500, { error: err.message });
      return send(res, 503, { error: 'the cache could not answer', code: typeof err?.code === 'string' ? err.code : undefined });
    }
  }

  function router(req, res, next) {
    handle(req, res, next).catch(() => send(res, 500, { error: 'internal error' }));
  }
  // Ends every live stream and stops listening to the cache's errors.
  router.close = () => {
    for (const c of [...clients]) endClient(c);
    cache.off('error', onError);
  };
  return router;
}

module.exports = { adminRouter };
