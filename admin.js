'use strict';
// `@bisman/cache/admin`: an operator's page for the cache, mounted behind the app's own admin
// check.
//
//   const { adminRouter } = require('@bisman/cache/admin');
//   app.use('/admin', adminRouter({ authorize: (req) => req.user?.role === 'SUPER_ADMIN' }));
//
// The router is a plain (req, res, next) handler: Express is the app's dependency, never this
// package's. See docs/admin.md.

module.exports = require('./lib/admin/router');
