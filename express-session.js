'use strict';
// `@bisman/cache/express-session`: an express-session Store (see
// lib/adapters/express-session.js).
module.exports = require('./lib/adapters/express-session.js');
