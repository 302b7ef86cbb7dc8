'use strict';
// The test hooks of the addon (src/test_hooks.rs): compiled only with the cargo feature
// `test-hooks`, which `npm test` and `npm run build:test` enable and a published binary never
// has. Each is looked up when called, so a suite that never calls one (the topology runs) also
// loads on a build without them; a call on such a build fails with what to do. NAMES is also
// what scripts/test-pack.js proves absent from the published package.

const NAMES = ['memoryStoreKeys', 'memoryStorePttl', 'memoryStoreSet', 'memoryStorePublish'];
// Hooks that are methods of NativeCache: testReply(id, name) answers operation `id` with the
// sample reply `name` of src/api/replies.rs.
const METHODS = ['testReply'];

function hook(name) {
  return (...args) => {
    const fn = require('../../binding.js')[name];
    if (typeof fn !== 'function') {
      throw new Error(`the addon was built without the test hooks (no ${name}): build it with \`npm run build:test\` (npm test does)`);
    }
    return fn(...args);
  };
}

// Operation `id` of `native` (a NativeCache) answered with sample reply `name`.
function testReply(native, id, name) {
  if (typeof native.testReply !== 'function') {
    throw new Error('the addon was built without the test hooks (no testReply): build it with `npm run build:test` (npm test does)');
  }
  native.testReply(id, name);
}

module.exports = { NAMES, METHODS, testReply, ...Object.fromEntries(NAMES.map((n) => [n, hook(n)])) };
