'use strict';
// One cache instance's shared state: its options, its (lazily created) native bridge, its
// counters and its in-flight loader calls. The service objects hold a Context, never a
// connection, so `configure()` can swap the back end under singletons the app already holds.

const os = require('os');
const { Bridge } = require('./bridge');
const { typeError, isBackendFailure } = require('./errors');
const { nearCacheOptions } = require('./permissions');
const { tlsOptionsOf } = require('./tls');
const { NearL1 } = require('./near_l1');
const { pubsubOptions } = require('./pubsub');
const { Journal, journalMax } = require('./journal');
const { Latency, timedValue, timedError } = require('./metrics');

const SERVICES = ['session', 'permission', 'rateLimit', 'lock', 'pubsub'];

function newStats() {
  const s = {};
  for (const name of SERVICES) {
    s[name] = { hits: 0, misses: 0, fallbacks: 0, loaderCalls: 0, errors: 0 };
  }
  return s;
}

// The host name, made safe for lock owners and message origins.
function defaultNodeId() {
  return os.hostname().replace(/[\s:*?[\]]/g, '-') || 'node';
}

// `cluster: ['redis://h:p', …]` and `sentinel: { masterName, nodes: ['redis://h:p', …] }`: the
// shapes are checked here, the URLs natively (a URL never appears in an error).
function checkNodeList(list, name) {
  if (!Array.isArray(list) || list.length === 0 || list.some((u) => typeof u !== 'string')) {
    throw typeError(`${name} must be a non-empty array of redis:// URL strings`);
  }
}

// The URL forms: `redis+cluster://[user:pass@]h:p,h:p…` and
// `redis+sentinel://h:p,h:p…/masterName` (the value never appears in an error).
function topologyFromUrl(url) {
  const m = /^redis\+(cluster|sentinel):\/\/([^/?#]*)(?:\/([^/?#]*))?$/.exec(url.trim());
  if (!m) throw typeError('a redis+cluster:// or redis+sentinel:// URL must be scheme://host:port,host:port…[/masterName] (the value is not shown)');
  const [, kind, authority, name] = m;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const nodes = (at >= 0 ? authority.slice(at + 1) : authority).split(',').filter((h) => h !== '').map((h) => `redis://${userinfo}${h}`);
  if (kind === 'cluster') {
    if (name) throw typeError('a redis+cluster:// URL has no path (the value is not shown)');
    return { cluster: nodes };
  }
  return { sentinel: { masterName: name || '', nodes } };
}

function normalizeTopology(options) {
  const fromEnv = options.url === undefined && options.cluster === undefined && options.sentinel === undefined;
  const url = options.url !== undefined ? options.url : fromEnv ? process.env.REDIS_URL : undefined;
  if (typeof url === 'string' && /^redis\+(cluster|sentinel):\/\//.test(url.trim())) {
    if (options.cluster !== undefined || options.sentinel !== undefined) throw typeError('give only one of url, cluster and sentinel');
    options = { ...options, url: undefined, ...topologyFromUrl(url) };
  }
  const { cluster, sentinel } = options;
  if (cluster === undefined && sentinel === undefined) return {};
  const given = [options.url !== undefined, cluster !== undefined, sentinel !== undefined].filter(Boolean).length;
  if (given > 1) throw typeError('give only one of url, cluster and sentinel');
  if (cluster !== undefined) {
    checkNodeList(cluster, 'cluster');
    return { cluster: [...cluster] };
  }
  if (sentinel === null || typeof sentinel !== 'object') {
    throw typeError('sentinel must be an object { masterName, nodes }');
  }
  if (typeof sentinel.masterName !== 'string' || sentinel.masterName === '') {
    throw typeError('sentinel.masterName must be a non-empty string');
  }
  checkNodeList(sentinel.nodes, 'sentinel.nodes');
  return { sentinel: { masterName: sentinel.masterName, nodes: [...sentinel.nodes] } };
}

function normalizeOptions(options) {
  if (options == null) options = {};
  if (typeof options !== 'object') throw typeError('options must be an object');
  const topology = normalizeTopology(options);
  if (topology.cluster || topology.sentinel) {
    return { ...normalizeOptions({ ...options, cluster: undefined, sentinel: undefined, url: '' }), ...topology, url: undefined };
  }
  const url = options.url !== undefined ? options.url : process.env.REDIS_URL;
  if (url != null && typeof url !== 'string') throw typeError('url must be a string');
  const loaders = options.loaders || {};
  if (typeof loaders !== 'object') throw typeError('loaders must be an object of functions');
  for (const [name, fn] of Object.entries(loaders)) {
    if (fn != null && typeof fn !== 'function') throw typeError(`loaders.${name} must be a function`);
  }
  const nodeId = options.nodeId !== undefined ? options.nodeId : defaultNodeId();
  if (typeof nodeId !== 'string' || nodeId === '' || /[\s:*?[\]]/.test(nodeId)) {
    throw typeError('nodeId must be a non-empty string without whitespace, ":" or glob characters');
  }
  const numbers = {};
  for (const name of NUMBER_OPTIONS) {
    const v = options[name];
    if (v != null && typeof v !== 'number') throw typeError(`${name} must be a number (got ${typeof v})`);
    numbers[name] = v == null ? undefined : v; // null, like undefined: the default
  }
  for (const name of STRING_OPTIONS) {
    const v = options[name];
    // the value is never shown: it may be a password
    if (v != null && typeof v !== 'string') throw typeError(`${name} must be a string (got ${typeof v})`);
    numbers[name] = v == null ? undefined : v;
  }
  return { ...options, ...numbers, url: url || undefined, loaders, nodeId, revocationJournalMax: journalMax(options.revocationJournalMax) };
}

// The numeric options: their type is checked here (a TypeError with a code, like every bad
// option), their range natively (src/config.rs: a RangeError).
const NUMBER_OPTIONS = ['commandTimeoutMs', 'connectTimeoutMs', 'maxValueBytes', 'circuitThreshold', 'circuitCooldownMs', 'maxOutboxBytes', 'maxReplyBytes', 'maxMessageBytes', 'nearCacheTtlMs', 'nearCacheMax', 'db'];
// The connection's string options: their type here, their length and characters natively
// (an empty username or password counts as not given, as in ioredis and node-redis).
const STRING_OPTIONS = ['username', 'password', 'connectionName', 'sentinelUsername', 'sentinelPassword'];

class Context {
  constructor(options) {
    this.options = normalizeOptions(options);
    this.bridgeInstance = null;
    // The JS near cache of the current bridge (lib/near_l1.js), or null.
    this.nearL1 = null;
    this.stats = newStats();
    this.flights = new Map();
    // Revocations that could not reach Redis, replayed when it answers (lib/journal.js).
    this.journal = new Journal(this, this.options.revocationJournalMax);
    // The public operation running synchronously (set by lib/tracing.js), or null; the
    // back-end calls it starts are observed in `latency` (lib/metrics.js).
    this.current = null;
    this.latency = new Latency();
  }

  ensureBridge() {
    if (this.bridgeInstance === null) {
      const o = this.options;
      this.bridgeInstance = new Bridge({
        url: o.url,
        cluster: o.cluster,
        sentinelMasterName: o.sentinel ? o.sentinel.masterName : undefined,
        sentinelNodes: o.sentinel ? o.sentinel.nodes : undefined,
        keyPrefix: o.keyPrefix,
        commandTimeoutMs: o.commandTimeoutMs,
        connectTimeoutMs: o.connectTimeoutMs,
        maxValueBytes: o.maxValueBytes,
        circuitThreshold: o.circuitThreshold,
        circuitCooldownMs: o.circuitCooldownMs,
        maxOutboxBytes: o.maxOutboxBytes,
        maxReplyBytes: o.maxReplyBytes,
        username: o.username,
        password: o.password,
        db: o.db,
        connectionName: o.connectionName,
        sentinelUsername: o.sentinelUsername,
        sentinelPassword: o.sentinelPassword,
        ...tlsOptionsOf(o.tls, o.sentinelTls),
        ...nearCacheOptions(o),
        ...pubsubOptions(o),
      });
      this.nearL1 = NearL1.create(this.bridgeInstance.native);
      this.journal.resume();
    }
    return this.bridgeInstance;
  }

  get bridge() {
    return this.bridgeInstance === null ? this.ensureBridge() : this.bridgeInstance;
  }

  // Replaces the configuration; the old connection is closed.
  reconfigure(options) {
    const next = normalizeOptions(options);
    const old = this.bridgeInstance;
    this.options = next;
    this.journal.max = next.revocationJournalMax;
    this.bridgeInstance = null;
    this.nearL1 = null;
    try {
      this.ensureBridge();
    } finally {
      if (old !== null) old.close();
    }
  }

  shutdown() {
    this.journal.stop();
    if (this.bridgeInstance !== null) {
      this.bridgeInstance.close();
      this.bridgeInstance = null;
    }
    this.nearL1 = null;
    this.flights.clear();
  }

  // Starts one native operation: `start(native, id)` validates and submits (a throw there
  // becomes the rejection: bad input never reaches the back end); a value it returns is the
  // answer when it decided not to submit anything. See Bridge#wait.
  op(start, onValue, onError) {
    return this.opArg(start, undefined, onValue, onError);
  }

  // `op` for hot paths: `start(n, id, arg)`, `onValue(value, arg)` and `onError(err, arg)` are
  // made once by the caller; the call's own state travels in `arg` (no closures per call).
  opArg(start, arg, onValue, onError) {
    let b, id, early;
    try {
      b = this.bridge;
      id = b.nextId();
      b.queueFlush();
      early = start(b.native, id, arg);
    } catch (err) {
      if (id !== undefined) b.release(id);
      // No slot (ERR_CACHE_OVERLOAD) is a back-end failure like a timeout: the caller's
      // fallback answers (reads ask the loaders, limits fail open, locks are refused).
      if (id === undefined && onError !== undefined && isBackendFailure(err)) {
        try {
          return Promise.resolve(onError(err, arg));
        } catch (e) {
          return Promise.reject(e);
        }
      }
      return Promise.reject(err);
    }
    if (early === undefined) {
      const op = this.current;
      if (op === null) return b.wait(id, onValue, onError, arg);
      return b.wait(id, timedValue, timedError, this.latency.begin(op, onValue, onError, arg));
    }
    b.release(id);
    return Promise.resolve(early);
  }

  // An onValue handler for `op` on a read of JSON: counts the hit or miss of `service` and
  // answers the parsed value, or null.
  hitCounter(service) {
    const stats = this.stats[service];
    return (json) => {
      if (json === null) {
        stats.misses++;
        return null;
      }
      stats.hits++;
      return JSON.parse(json);
    };
  }

  // An onError handler for `op`: a back-end failure is counted and answered with `value`.
  soft(service, value) {
    return (err) => {
      this.failed(service, err);
      return value;
    };
  }

  loader(name) {
    const fn = this.options.loaders[name];
    return typeof fn === 'function' ? fn : null;
  }

  // Records a failed operation: back-end failures count as errors (the caller falls back);
  // anything else is a bug or bad input and is rethrown.
  failed(service, err) {
    if (!isBackendFailure(err)) throw err;
    this.stats[service].errors++;
    if (this.onBackendFailure !== undefined) this.onBackendFailure(service, err);
  }

  // A revocation made on this node (issue 15): the loads in flight whose key starts with
  // `prefix` are detached, so no later caller joins a load that began before it. A detached
  // load still answers its own callers (its fill is refused by the key's revision).
  detachFlights(prefix) {
    for (const key of this.flights.keys()) {
      if (key.startsWith(prefix)) this.flights.delete(key);
    }
  }

  // One loader call per key at a time: concurrent misses share its promise. The loaders' keys
  // end with `#<revision>` (the revision the caller's miss read saw), so a caller that saw a
  // newer revocation never joins an older load.
  singleFlight(key, fn) {
    let flight = this.flights.get(key);
    if (flight === undefined) {
      flight = Promise.resolve()
        .then(fn)
        .finally(() => {
          if (this.flights.get(key) === flight) this.flights.delete(key);
        });
      this.flights.set(key, flight);
    }
    return flight;
  }
}

module.exports = { Context, normalizeOptions };
