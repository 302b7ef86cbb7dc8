'use strict';
// The generated loader (binding.js) with a clear message when the addon was never built.
let binding;
try {
  binding = require('../binding.js');
} catch (err) {
  const e = new Error(
    '@bisman/cache: the native addon is not built for this platform. Run `npm install` '
    + '(it builds the addon with cargo) or install the prebuilt package for your platform. Cause: '
    + err.message,
  );
  e.code = 'ERR_NATIVE_MISSING';
  throw e;
}
module.exports = binding;
