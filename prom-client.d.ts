// `@bisman/cache/prom-client`: the cache's metrics on a prom-client registry.

/** The part of a prom-client `Registry` this module uses (any prom-client 13–15 registry fits). */
export interface PromClientRegistry {
  /** Adds a metric to the registry (prom-client throws when its name is taken). */
  registerMetric(metric: any): void;
}

/** A metric object as registered: read live from the cache at every scrape. */
export interface CacheFamilyMetric {
  /** The family name, e.g. `bisman_cache_hits_total`. */
  readonly name: string;
  /** The HELP text. */
  readonly help: string;
  /** The Prometheus type. */
  readonly type: 'counter' | 'gauge' | 'summary' | 'histogram';
  /** How prom-client's cluster registry combines workers: summed. */
  readonly aggregator: 'sum';
  /** The family's current values, read from the cache (what a scrape calls). */
  get(): {
    name: string;
    help: string;
    type: 'counter' | 'gauge' | 'summary' | 'histogram';
    aggregator: 'sum';
    values: { metricName: string; labels: Record<string, string>; value: number }[];
  };
  /** Does nothing: the values are the cache's counters, which are never reset. */
  reset(): void;
}

/**
 * Registers every metric family of the cache (`bisman_cache_*`, the operation latency
 * histogram included) on `registry`. `cache` defaults to the module's default instance.
 * Throws a TypeError (`code: 'ERR_INVALID_ARG'`) when `registry` is not a registry or `cache`
 * not a cache. Registering a family name twice on one registry throws prom-client's error.
 */
export declare function registerMetrics(
  registry: PromClientRegistry,
  options?: { cache?: { collectMetrics(): import('./index').MetricFamily[] } },
): CacheFamilyMetric[];
