'use strict';
// routes/auth.js: login behind rateLimiter.authLimiter (5 per minute per IP), logout.
const crypto = require('crypto');
const express = require('express');
const { rateLimiter, invalidateSession, hashToken } = require('../cache');
const { authMiddleware } = require('../middleware/auth');

const SESSION_MS = 60 * 60 * 1000;

function authRoutes(db) {
  const router = express.Router();

  router.post('/login', rateLimiter.authLimiter, async (req, res) => {
    const { username, password } = req.body || {};
    const user = await db.verifyLogin(username, password);
    if (!user) return res.status(401).json({ error: 'Invalid credentials' });
    const token = crypto.randomBytes(32).toString('hex');
    // The database keeps the session by token hash; the cache fills on first use
    // (getSessionWithFallback → loaders.session).
    await db.createSession(hashToken(token), user, SESSION_MS);
    res.json({ token, user });
  });

  router.post('/logout', authMiddleware, async (req, res) => {
    await db.deleteSession(req.sessionHash);
    await invalidateSession(req.sessionHash);
    res.json({ success: true });
  });

  return router;
}

module.exports = { authRoutes };
