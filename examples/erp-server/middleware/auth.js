'use strict';
// middleware/auth.js: the guide's section 8, as written (plus req.sessionHash, which its logout
// route uses).
const { getSessionWithFallback, hashToken, pubsub } = require('../cache');

// Initialize on app start
pubsub.subscribe();

const authMiddleware = async (req, res, next) => {
  const token = req.headers.authorization?.split(' ')[1];

  if (!token) {
    return res.status(401).json({ error: 'No token provided' });
  }

  const session = await getSessionWithFallback(token);

  if (!session) {
    return res.status(401).json({ error: 'Invalid session' });
  }

  req.user = session.user;
  req.sessionSource = session.source; // 'cache' or 'database'
  req.sessionHash = hashToken(token);
  next();
};

module.exports = { authMiddleware };
