'use strict';
// `@bisman/cache/express-rate-limit`: an express-rate-limit v8 Store (see
// lib/adapters/express-rate-limit.js).
module.exports = require('./lib/adapters/express-rate-limit.js');
