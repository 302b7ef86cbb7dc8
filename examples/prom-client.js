'use strict';
// Plugging @bisman/cache's counters into prom-client's registry (prom-client is the app's
// dependency, not ours). `registerCacheMetrics(client, cache[, registry])` adds one collector
// per metric family; each scrape reads the live counters. Counters stay counters; a summary
// becomes two gauges (`…_sum`, `…_count`), which is how prom-client can carry it.
//
//   const client = require('prom-client');
//   const cache = require('@bisman/cache');
//   registerCacheMetrics(client, cache);
//   app.get('/metrics', async (req, res) => {
//     res.set('Content-Type', client.register.contentType);
//     res.send(await client.register.metrics());   // the app's metrics and the cache's
//   });

function registerCacheMetrics(client, cache, registry = client.register) {
  const current = (name) => cache.collectMetrics().find((f) => f.name === name);
  const metrics = [];
  for (const fam of cache.collectMetrics()) {
    const parts = fam.type === 'summary' ? [['_sum', 'gauge'], ['_count', 'gauge']] : [['', fam.type]];
    for (const [suffix, type] of parts) {
      const Metric = type === 'counter' ? client.Counter : client.Gauge;
      metrics.push(
        new Metric({
          name: fam.name + suffix,
          help: fam.help,
          labelNames: fam.labelNames,
          registers: [registry],
          collect() {
            this.reset();
            const now = current(fam.name);
            if (!now) return;
            for (const [s, labels, value] of now.samples) {
              if (s !== suffix) continue;
              if (type === 'counter') this.inc(labels, value);
              else this.set(labels, value);
            }
          },
        }),
      );
    }
  }
  return metrics;
}

module.exports = { registerCacheMetrics };
