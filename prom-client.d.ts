// `@bisman/cache/prom-client`: the cache's metrics on a prom-client registry.

/** The part of a prom-client `Registry` this module uses (any prom-client 13–15 registry fits). */
export interface PromClientRegistry {
  registerMetric(metric: any): void;
}

/** A metric object as registered: read live from the cache at every scrape. */
export interface CacheFamilyMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'summary' | 'histogram';
  readonly aggregator: 'sum';
  get(): {
    name: string;
    help: string;
    type: 'counter' | 'gauge' | 'summary' | 'histogram';
    aggregator: 'sum';
    values: { metricName: string; labels: Record<string, string>; value: number }[];
  };
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
