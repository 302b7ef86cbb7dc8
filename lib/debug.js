'use strict';
// NODE_DEBUG=bisman-cache: a log line on stderr (through util.debuglog) for each connection
// change, circuit transition, fallback and back-end error. A line never carries a password, a
// token or a key: a back end is named by scheme, host and port only, an error by its code and
// its message with any URL's credentials removed.

const util = require('util');

const log = util.debuglog('bisman-cache');

// Whether NODE_DEBUG names bisman-cache (read once: debuglog decides at its first use).
const enabled = log.enabled;

// `scheme://user:pass@host` → `scheme://host`, anywhere in a message.
const redact = (text) => String(text).replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1');

// Where a cache's options point, without credentials, path or query.
function describeTarget(options) {
  if (options.cluster) return `a cluster of ${options.cluster.length} seed node(s)`;
  if (options.sentinel) return `sentinel master of ${options.sentinel.nodes.length} sentinel(s)`;
  const url = options.url;
  if (typeof url !== 'string' || url === '') return 'no back end (disabled)';
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^/@]*@)?([^/?#]*)/i.exec(url);
  if (!m) return 'an unreadable URL';
  return m[1].toLowerCase() === 'memory' ? 'memory://' : `${m[1].toLowerCase()}://${m[2]}`;
}

function debug(format, ...args) {
  if (enabled) log(format, ...args);
}

// A back-end failure a call of `service` absorbed (its fallback answered).
function debugFailure(service, err) {
  if (!enabled) return;
  const code = err && err.code ? err.code : 'ERR';
  log('%s: back-end failure %s (%s); the fallback answered', service, code, redact(err && err.message));
}

module.exports = { debug, debugFailure, describeTarget, redact, enabled };
