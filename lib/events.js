'use strict';
// Events of a cache instance, for logging:
//   'error'     (err, service)  a back-end failure (Redis down, slow, refused) that a call of
//                               `service` absorbed by falling back; one per failed operation
//   'circuit'   ({ state })     'open' when the back end becomes unavailable (isEnabled() turns
//                               false: reads fall back to the loaders), 'closed' when it is back
//   'reconnect' ()              the back end answers again after being down
// The link state is read from isEnabled() every CIRCUIT_POLL_MS while someone listens to
// 'circuit' or 'reconnect' (an unref'd timer: it never keeps Node alive). A listener that
// throws is logged, never propagated into the call that failed.
// With NODE_DEBUG=bisman-cache (lib/debug.js) the link state is polled from the start, and
// failures and circuit transitions are logged on stderr.

const { debug, debugFailure, enabled: debugEnabled } = require('./debug');

const CIRCUIT_POLL_MS = 100;
const LINK_EVENTS = new Set(['circuit', 'reconnect']);

function attachEvents(cache) {
  const ctx = cache.ctx;
  let timer = null;
  let up = null; // last known link state; null: unknown / not configured

  const safeEmit = (event, ...args) => {
    try {
      cache.emit(event, ...args);
    } catch (err) {
      console.error(`@bisman/cache: a '${event}' listener threw:`, err);
    }
  };

  ctx.onBackendFailure = (service, err) => {
    debugFailure(service, err);
    if (cache.listenerCount('error') > 0) safeEmit('error', err, service);
  };

  const tick = () => {
    const b = ctx.bridgeInstance;
    if (b === null || !b.native.isConfigured()) {
      up = null;
      return;
    }
    const now = b.native.isEnabled();
    if (up === null) {
      up = now;
      debug('circuit %s (back end %s)', now ? 'closed' : 'open', now ? 'answers' : 'unavailable: calls fall back');
      if (!now) safeEmit('circuit', { state: 'open' });
      return;
    }
    if (now === up) return;
    up = now;
    debug('circuit %s (back end %s)', now ? 'closed' : 'open', now ? 'answers again' : 'unavailable: calls fall back');
    safeEmit('circuit', { state: now ? 'closed' : 'open' });
    if (now) safeEmit('reconnect');
  };

  const linkListeners = () => cache.listenerCount('circuit') + cache.listenerCount('reconnect');
  const poll = () => {
    up = null;
    timer = setInterval(tick, CIRCUIT_POLL_MS);
    timer.unref();
    setImmediate(tick);
  };
  if (debugEnabled) poll();
  cache.on('newListener', (event) => {
    if (!LINK_EVENTS.has(event) || timer !== null) return;
    poll();
  });
  cache.on('removeListener', (event) => {
    if (LINK_EVENTS.has(event) && timer !== null && !debugEnabled && linkListeners() === 0) {
      clearInterval(timer);
      timer = null;
    }
  });
}

module.exports = { attachEvents, CIRCUIT_POLL_MS };
