'use strict';
// One cache instance's shared state: its options, its (lazily created) native bridge, its
// counters and its in-flight loader calls. The service objects hold a Context, never a
// connection, so `configure()` can swap the back end under singletons the app already holds.

const os = require('os');
const { Bridge } = require('./bridge');
const { typeError, isBackendFailure } = require('./errors');
const { nearCacheOptions } = require('./permissions');

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

function normalizeOptions(options) {
  if (options == null) options = {};
  if (typeof options !== 'object') throw typeError('options must be an object');
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
  return { ...options, url: url || undefined, loaders, nodeId };
}

class Context {
  constructor(options) {
    this.options = normalizeOptions(options);
    this.bridgeInstance = null;
    this.stats = newStats();
    this.flights = new Map();
  }

  ensureBridge() {
    if (this.bridgeInstance === null) {
      const o = this.options;
      this.bridgeInstance = new Bridge({
        url: o.url,
        keyPrefix: o.keyPrefix,
        commandTimeoutMs: o.commandTimeoutMs,
        connectTimeoutMs: o.connectTimeoutMs,
        maxValueBytes: o.maxValueBytes,
        ...nearCacheOptions(o),
      });
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
    this.bridgeInstance = null;
    try {
      this.ensureBridge();
    } finally {
      if (old !== null) old.close();
    }
  }

  shutdown() {
    if (this.bridgeInstance !== null) {
      this.bridgeInstance.close();
      this.bridgeInstance = null;
    }
    this.flights.clear();
  }

  // Starts one native operation: `start(native, id)` validates and submits (a throw there
  // becomes the rejection: bad input never reaches the back end); a value it returns is the
  // answer when it decided not to submit anything. See Bridge#wait.
  op(start, onValue, onError) {
    let b, id, early;
    try {
      b = this.bridge;
      id = b.nextId();
      early = start(b.native, id);
    } catch (err) {
      return Promise.reject(err);
    }
    return early === undefined ? b.wait(id, onValue, onError) : Promise.resolve(early);
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

  // One loader call per key at a time: concurrent misses share its promise.
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
