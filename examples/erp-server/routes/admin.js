'use strict';
// routes/admin.js: the operator's page of @bisman/cache (`@bisman/cache/admin`) behind a
// SUPER_ADMIN session, and a small sign-in form for browsers.
//
// The page's live stream (EventSource) cannot send an Authorization header, so a browser signs
// in at /admin/login: the session token goes into an HttpOnly, SameSite=Strict cookie scoped to
// /admin. API clients may send the bearer token of a SUPER_ADMIN session instead.
const crypto = require('crypto');
const express = require('express');
const cache = require('../cache');
const { adminRouter } = require('@bisman/cache/admin');

const COOKIE = 'erp_admin';
const SESSION_MS = 60 * 60 * 1000;
const CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'";

function tokenOf(req) {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim() || null;
  for (const part of String(req.headers.cookie || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

// The app's own admin check, handed to the router: a live session whose user is SUPER_ADMIN.
async function authorize(req) {
  const token = tokenOf(req);
  if (token === null) return false;
  const session = await cache.getSessionWithFallback(token);
  return session !== null && session.user?.role === 'SUPER_ADMIN';
}

const loginPage = (message) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in: operator page</title></head><body>
<h1>Operator page: sign in</h1>
${message ? `<p role="alert">${message}</p>` : ''}
<form method="post" action="/admin/login">
<p><label>User <input name="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Sign in</button></p>
</form>
<p><a href="/">Back to the example ERP</a></p>
</body></html>
`;

function adminRoutes(db) {
  const router = express.Router();
  const page = (res, status, message) => res.status(status).set('Content-Security-Policy', CSP).type('html').send(loginPage(message));

  router.get('/login', (req, res) => page(res, 200));

  router.post('/login', cache.rateLimiter.authLimiter, express.urlencoded({ extended: false, limit: '2kb' }), async (req, res) => {
    const { username, password } = req.body || {};
    const user = typeof username === 'string' && typeof password === 'string' ? await db.verifyLogin(username, password) : null;
    if (!user) return page(res, 401, 'Wrong user or password.');
    if (user.role !== 'SUPER_ADMIN') return page(res, 403, 'Only a SUPER_ADMIN may open the operator page.');
    const token = crypto.randomBytes(32).toString('hex');
    await db.createSession(cache.hashToken(token), user, SESSION_MS);
    const secure = req.secure ? '; Secure' : '';
    res.set('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=${SESSION_MS / 1000}${secure}`);
    res.redirect(303, '/admin');
  });

  router.post('/logout', async (req, res) => {
    const token = tokenOf(req);
    if (token !== null) {
      const hash = cache.hashToken(token);
      await db.deleteSession(hash);
      await cache.invalidateSession(hash);
    }
    res.set('Set-Cookie', `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0`);
    res.redirect(303, '/admin/login');
  });

  // A browser without a session is sent to the form; everything else meets the router, which
  // asks authorize() on every request (401/403 JSON when it says no).
  router.get('/', (req, res, next) => {
    if (tokenOf(req) === null && String(req.headers.accept || '').includes('text/html')) return res.redirect(303, '/admin/login');
    next();
  });
  // Revoking from the page deletes the database's row too, as logout does: otherwise the
  // session loader would fill the cache again from it on the token's next use.
  router.use(
    adminRouter({
      cache,
      authorize,
      deleteSession: (tokenHash) => db.deleteSession(tokenHash),
      deleteUserSessions: (userId) => db.deleteUserSessions(userId),
    }),
  );
  return router;
}

module.exports = { adminRoutes, authorize };
