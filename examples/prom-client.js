'use strict';
// Plugging @bisman/cache's metrics into prom-client's registry (prom-client is the app's
// dependency, not ours). The package does it in `@bisman/cache/prom-client`:
//
//   const client = require('prom-client');
//   const { registerMetrics } = require('@bisman/cache/prom-client');
//   registerMetrics(client.register);              // or (registry, { cache: myCache })
//   app.get('/metrics', async (req, res) => {
//     res.set('Content-Type', client.register.contentType);
//     res.send(await client.register.metrics());   // the app's metrics and the cache's
//   });
//
// `registerCacheMetrics(client, cache[, registry])` is the same call in this example's
// earlier signature: each scrape reads the live counters, every family keeps its type.

const { registerMetrics } = require('@bisman/cache/prom-client');

function registerCacheMetrics(client, cache, registry = client.register) {
  return registerMetrics(registry, { cache });
}

module.exports = { registerCacheMetrics };
