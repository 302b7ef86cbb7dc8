// The ERP's `cache/index.js`, after the migration: one line.
module.exports = require('@bisman/cache');
