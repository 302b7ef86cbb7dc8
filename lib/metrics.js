'use strict';
// metrics(): the counters of one cache instance as Prometheus text (exposition format 0.0.4),
// built from stats() and the services' own counters. No dependency: serve it from a /metrics
// route, or hand it to prom-client through a custom collector (README "Metrics").

const { now } = require('./clock');
const { OPERATIONS } = require('./tracing');

const SERVICES = ['session', 'permission', 'rateLimit', 'lock', 'pubsub', 'cache'];

// Upper bounds (seconds) of the latency histogram's buckets; '+Inf' follows.
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const NB = LATENCY_BUCKETS.length;
// One row per operation: NB + 1 bucket counts (not cumulative; the last is +Inf), the sum of
// the observed seconds, the count.
const ROW = NB + 3;
// Timing records kept for reuse: a call in flight holds one; at most this many wait idle.
const POOL_MAX = 4096;

// The latency histogram of one cache instance, per traced operation (lib/tracing.js): the
// time from the start of a back-end call an operation makes (Context#opArg) to its answer, on
// the shared clock (lib/clock.js: the calls started together share their start time, the
// answers of one batch their end time).
// Recording makes no allocation once the pool of timing records holds as many records as
// calls are in flight: a record carries the call's own handlers and argument instead of them.
class Latency {
  constructor() {
    this.table = new Float64Array(OPERATIONS.length * ROW);
    this.pool = [];
  }

  // A record for one back-end call of `op`, handed to Bridge#wait as its argument with the
  // handlers timedValue / timedError below.
  begin(op, onValue, onError, arg) {
    let rec = this.pool.pop();
    if (rec === undefined) rec = { latency: this, row: 0, onValue: undefined, onError: undefined, arg: undefined, t0: 0 };
    rec.row = op.index * ROW;
    rec.onValue = onValue;
    rec.onError = onError;
    rec.arg = arg;
    rec.t0 = now();
    return rec;
  }

  // Observes the call of `rec` and recycles the record.
  end(rec) {
    const s = (now() - rec.t0) / 1000;
    const t = this.table;
    const row = rec.row;
    let b = 0;
    while (b < NB && s > LATENCY_BUCKETS[b]) b++;
    t[row + b]++;
    t[row + NB + 1] += s;
    t[row + NB + 2]++;
    rec.onValue = undefined;
    rec.onError = undefined;
    rec.arg = undefined;
    if (this.pool.length < POOL_MAX) this.pool.push(rec);
  }

  // → [[op, cumulative bucket counts, sum, count]] of the operations observed at least once.
  snapshot() {
    const out = [];
    const t = this.table;
    for (const op of OPERATIONS) {
      const row = op.index * ROW;
      const count = t[row + NB + 2];
      if (count === 0) continue;
      const cumulative = [];
      let c = 0;
      for (let b = 0; b <= NB; b++) cumulative.push((c += t[row + b]));
      out.push([op, cumulative, t[row + NB + 1], count]);
    }
    return out;
  }
}

function timedValue(value, rec) {
  const { onValue, arg } = rec;
  rec.latency.end(rec);
  return onValue === undefined ? value : onValue(value, arg);
}

function timedError(err, rec) {
  const { onError, arg } = rec;
  rec.latency.end(rec);
  if (onError === undefined) throw err;
  return onError(err, arg);
}

// Label values are escaped as the exposition format requires (\\, \" and \n).
const esc = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

class Family {
  constructor(name, type, help, labelNames) {
    this.name = name;
    this.type = type;
    this.help = help;
    this.labelNames = labelNames;
    this.samples = [];
  }

  add(labels, value, suffix = '') {
    this.samples.push([suffix, labels, num(value)]);
    return this;
  }

  render() {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [suffix, labels, value] of this.samples) {
      const keys = Object.keys(labels);
      const l = keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${esc(labels[k])}"`).join(',')}}`;
      lines.push(`${this.name}${suffix}${l} ${value}`);
    }
    return lines.join('\n');
  }
}

// The families as plain data ({ name, type, help, labelNames, samples: [[suffix, labels, value]] }),
// so a prom-client collector can reuse them; `metrics()` renders them.
function collect(cache) {
  const s = cache.stats();
  const f = [];
  const fam = (name, type, help, labelNames = []) => {
    const x = new Family(`bisman_cache_${name}`, type, help, labelNames);
    f.push(x);
    return x;
  };

  const hits = fam('hits_total', 'counter', 'Reads answered from the cache (near cache or Redis), by service.', ['service']);
  const misses = fam('misses_total', 'counter', 'Reads the cache could not answer, by service.', ['service']);
  const fallbacks = fam('fallbacks_total', 'counter', 'Answers that did not come from the cache, by service: database loads (sessions, permissions) or fail-open decisions (rate limits).', ['service']);
  const loaderCalls = fam('loader_calls_total', 'counter', 'Calls of the database loaders, by service.', ['service']);
  const errors = fam('errors_total', 'counter', 'Operations that failed on the back end (Redis down, slow or disabled), by service.', ['service']);
  for (const service of SERVICES) {
    const x = s[service] || {};
    hits.add({ service }, x.hits);
    misses.add({ service }, x.misses);
    fallbacks.add({ service }, x.fallbacks);
    loaderCalls.add({ service }, x.loaderCalls);
    errors.add({ service }, x.errors);
  }

  const decisions = fam('ratelimit_decisions_total', 'counter', 'Rate-limit decisions by endpoint: allowed, blocked (429, or 503 failing closed) or fail_open (Redis failed, the request passed).', ['endpoint', 'decision']);
  for (const [endpoint, d] of cache.rateLimiter.decisions) {
    decisions.add({ endpoint, decision: 'allowed' }, d.allowed);
    decisions.add({ endpoint, decision: 'blocked' }, d.blocked);
    decisions.add({ endpoint, decision: 'fail_open' }, d.failOpen);
  }
  fam('ratelimit_block_cache_hits_total', 'counter', 'Blocked hits answered by the in-process block cache without a Redis call.').add({}, s.rateLimit.blockCacheHits);

  fam('lock_acquired_total', 'counter', 'Lock attempts granted.').add({}, s.lock.hits);
  fam('lock_busy_total', 'counter', 'Lock attempts refused because another owner held the lock.').add({}, s.lock.misses);
  fam('lock_waits_total', 'counter', 'Lock attempts retried after waiting (busy lock or back-end failure).').add({}, s.lock.waits);
  fam('lock_lost_total', 'counter', 'Locks found lost while their holder ran (the AbortSignal of withLock fired).').add({}, s.lock.lost);

  const ps = s.pubsub;
  fam('pubsub_messages_total', 'counter', 'Invalidation messages received by this node.').add({}, ps.messages);
  fam('pubsub_handler_errors_total', 'counter', 'onMessage handlers that threw or rejected.').add({}, ps.handlerErrors);
  fam('pubsub_lag_milliseconds', 'summary', 'Delivery lag of received messages (receive time minus the sender timestamp).')
    .add({}, ps.lagMsSum, '_sum')
    .add({}, ps.lagSamples, '_count');
  fam('pubsub_lag_max_milliseconds', 'gauge', 'Largest delivery lag seen.').add({}, ps.lagMsMax);
  const b = cache.ctx.bridgeInstance;
  const status = cache.pubsub.status();
  fam('pubsub_subscribed', 'gauge', '1 while the invalidation subscription is confirmed.').add({}, status.connected ? 1 : 0);
  fam('pubsub_resubscribes_total', 'counter', 'Times the subscriber resubscribed after a reconnect.').add({}, status.resubscribes);
  fam('pubsub_dropped_total', 'counter', 'Messages dropped by the subscriber.').add({}, status.dropped);
  const rejected = fam('pubsub_rejected_total', 'counter', 'Received messages refused before any handler or near cache saw them, by reason: oversize (maxMessageBytes), unsigned or bad_signature (pubsubSecret).', ['reason']);
  const rj = ps.rejected || {};
  rejected.add({ reason: 'oversize' }, rj.oversize).add({ reason: 'unsigned' }, rj.unsigned).add({ reason: 'bad_signature' }, rj.badSignature);
  const lost = fam('pubsub_lost_messages_total', 'counter', 'Signs that invalidation messages were lost, by kind: gap (a skipped number), out_of_order (a replay or duplicate), sender_restart, late_join (a sender first heard mid-stream); each drops the near caches.', ['kind']);
  lost.add({ kind: 'gap' }, ps.gaps).add({ kind: 'out_of_order' }, ps.outOfOrder).add({ kind: 'sender_restart' }, ps.senderRestarts).add({ kind: 'late_join' }, ps.lateJoins);
  fam('near_cache_drops_total', 'counter', 'Times this node dropped its near caches because invalidation messages may have been lost.').add({}, ps.nearDrops);
  const stale = fam('stale_fills_total', 'counter', 'Loader answers not cached because a revocation came after the miss that started the load, by service.', ['service']);
  stale.add({ service: 'session' }, s.session.staleFills).add({ service: 'permission' }, s.permission.staleFills);
  const corrupt = fam('corrupt_values_total', 'counter', 'Cached values that were not a session or a permissions snapshot: dropped and read as a miss, by service.', ['service']);
  corrupt.add({ service: 'session' }, s.session.corrupt).add({ service: 'permission' }, s.permission.corrupt);

  // The same families with or without a back end (a registry keeps the names it first saw).
  const near = b !== null ? cache.permissionCache.nearCacheStats() : { hits: 0, misses: 0, size: 0, trusted: false };
  fam('near_cache_hits_total', 'counter', 'Permission reads answered from process memory.').add({}, near.hits);
  fam('near_cache_misses_total', 'counter', 'Permission reads the near cache could not answer.').add({}, near.misses);
  fam('near_cache_size', 'gauge', 'Permission snapshots held in process memory.').add({}, near.size);
  fam('near_cache_trusted', 'gauge', '1 while the near cache may answer (subscription healthy).').add({}, near.trusted ? 1 : 0);

  const rev = s.revocation;
  fam('revocations_pending', 'gauge', 'Revocations that could not reach Redis, kept by this node until it replays them (it treats them as revoked meanwhile).').add({}, rev.pending);
  fam('revocations_replayed_total', 'counter', 'Kept revocations replayed to Redis once it answered again.').add({}, rev.replayed);
  fam('revocation_journal_overflow_total', 'counter', 'Revocations that did not fit in the journal (revocationJournalMax): lost for the other nodes.').add({}, rev.journalOverflow);
  fam('enabled', 'gauge', '1 while the cache is enabled and Redis is not known to be down (the circuit is closed, or degraded: some cluster primaries still answer); 0 while reads fall back to the loaders.').add({}, s.enabled ? 1 : 0);
  fam('in_flight', 'gauge', 'Operations waiting on the back end.').add({}, s.inFlight);
  // Cluster and Sentinel: each data node known now (at most 64), from its connection's state
  // and its own breaker (no I/O); no samples on one server or memory://.
  const nodeUp = fam('node_up', 'gauge', '1 while the connection to a data node (a cluster primary serving slots, the primary behind sentinels) is not known to be down, by node host:port.', ['node']);
  const nodeCircuit = fam('node_circuit_open', 'gauge', 'Each data node\'s own circuit breaker: 1 while it is open or half-open (the keys of that node fall back), 0 while closed, by node host:port.', ['node']);
  for (const n of b !== null ? b.native.nodeStates() : []) {
    nodeUp.add({ node: n.address }, n.up ? 1 : 0);
    nodeCircuit.add({ node: n.address }, n.circuit === 'closed' ? 0 : 1);
  }

  const duration = fam('operation_duration_seconds', 'histogram', 'Time from the start of a back-end call made by a public operation to its answer (answers from process memory are not observed), by service and operation.', ['service', 'operation']);
  for (const [op, cumulative, sum, count] of cache.ctx.latency.snapshot()) {
    const { service, operation } = op;
    for (let b = 0; b <= NB; b++) duration.add({ service, operation, le: b < NB ? String(LATENCY_BUCKETS[b]) : '+Inf' }, cumulative[b], '_bucket');
    duration.add({ service, operation }, sum, '_sum').add({ service, operation }, count, '_count');
  }
  return f;
}

function metrics(cache) {
  return `${collect(cache)
    .map((x) => x.render())
    .join('\n')}\n`;
}

module.exports = { metrics, collect, Latency, timedValue, timedError, LATENCY_BUCKETS, CONTENT_TYPE: 'text/plain; version=0.0.4; charset=utf-8' };
