'use strict';
// `@bisman/cache/prom-client`: the cache's metrics on a prom-client registry.
//
//   const client = require('prom-client');
//   const { registerMetrics } = require('@bisman/cache/prom-client');
//   registerMetrics(client.register);                 // the module's default instance
//   registerMetrics(myRegistry, { cache: myCache });  // or any createCache() instance
//
// Each family of collectMetrics() becomes one metric of the registry, read live at every scrape
// with its own type (counter, gauge, summary, histogram), so the registry's text is the same
// as cache.metrics(). prom-client is the app's dependency, never this package's.

const { typeError } = require('./lib/errors');

const AGGREGATOR = { counter: 'sum', gauge: 'sum', summary: 'sum', histogram: 'sum' };

// The metric object prom-client's Registry#registerMetric takes: `name`, `help`, `type`,
// `get()` (the family at this instant) and `reset()`.
function familyMetric(cache, name, type, help) {
  const aggregator = AGGREGATOR[type];
  return {
    name,
    help,
    type,
    aggregator,
    get() {
      const fam = cache.collectMetrics().find((f) => f.name === name);
      const values = fam ? fam.samples.map(([suffix, labels, value]) => ({ metricName: name + suffix, labels, value })) : [];
      return { name, help, type, aggregator, values };
    },
    reset() {},
  };
}

/**
 * Registers every metric family of `cache` (default: the module's default instance) on
 * `registry`, a prom-client Registry; answers the registered metric objects.
 */
function registerMetrics(registry, { cache } = {}) {
  if (registry === null || typeof registry !== 'object' || typeof registry.registerMetric !== 'function') {
    throw typeError('registry must be a prom-client Registry (client.register or new client.Registry())');
  }
  if (cache === undefined) cache = require('./index.js');
  if (cache === null || typeof cache !== 'object' || typeof cache.collectMetrics !== 'function') {
    throw typeError('cache must be a cache instance (createCache()) or the module');
  }
  const metrics = [];
  for (const { name, type, help } of cache.collectMetrics()) {
    const metric = familyMetric(cache, name, type, help);
    registry.registerMetric(metric);
    metrics.push(metric);
  }
  return metrics;
}

module.exports = { registerMetrics };
