'use strict';
// Events of a cache instance, for logging:
//   'error'     (err, service)  a back-end failure (Redis down, slow, refused) that a call of
//                               `service` absorbed by falling back; one per failed operation
//   'circuit'   ({ state })     'open' when the back end becomes unavailable (isEnabled() turns
//                               false: reads fall back to the loaders), 'closed' when it is back.
//                               On Cluster and Sentinel this is the whole cache: 'open' once every
//                               data node's breaker is open, not while some still answer
//   'reconnect' ()              the back end answers again after being down
//   'nodeCircuit' ({ node, state, left? })  Cluster and Sentinel: one data node's own breaker
//                               ('host:port', never a password) opened ('open': the keys of that
//                               node fall back) or closed again ('closed'); `left: true` when a
//                               node whose breaker was open left the topology (its breaker is
//                               dropped: a failover promoted another node)
// The link state is read from isEnabled() (and the nodes' breakers from nodeStates()) every
// CIRCUIT_POLL_MS while someone listens to one of these (an unref'd timer: it never keeps Node
// alive). A listener that throws is logged, never propagated into the call that failed.
// With NODE_DEBUG=bisman-cache (lib/debug.js) the link state is polled from the start, and
// failures and circuit transitions are logged on stderr.

const { debug, debugFailure, enabled: debugEnabled } = require('./debug');

const CIRCUIT_POLL_MS = 100;
const LINK_EVENTS = new Set(['circuit', 'reconnect', 'nodeCircuit']);

function attachEvents(cache) {
  const ctx = cache.ctx;
  let timer = null;
  let up = null; // last known link state; null: unknown / not configured
  let nodes = null; // last known node address → its breaker is not closed; null: unknown

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

  // Each data node's breaker (Cluster, Sentinel): an event per node whose breaker opened or
  // closed since the last tick.
  const tickNodes = (b) => {
    if (!debugEnabled && cache.listenerCount('nodeCircuit') === 0) {
      nodes = null;
      return;
    }
    const now = new Map(b.native.nodeStates().map((n) => [n.address, n.circuit !== 'closed']));
    const first = nodes === null;
    for (const [node, open] of now) {
      const was = first ? false : nodes.get(node) === true;
      if (open === was) continue;
      debug('circuit of node %s %s', node, open ? 'open (its keys fall back)' : 'closed (it answers again)');
      safeEmit('nodeCircuit', { node, state: open ? 'open' : 'closed' });
    }
    if (!first) {
      for (const [node, open] of nodes) {
        if (open && !now.has(node)) {
          debug('circuit of node %s dropped (the node left the topology)', node);
          safeEmit('nodeCircuit', { node, state: 'closed', left: true });
        }
      }
    }
    nodes = now;
  };

  const tick = () => {
    const b = ctx.bridgeInstance;
    if (b === null || !b.native.isConfigured()) {
      up = null;
      nodes = null;
      return;
    }
    tickNodes(b);
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

  const linkListeners = () => [...LINK_EVENTS].reduce((n, event) => n + cache.listenerCount(event), 0);
  const poll = () => {
    up = null;
    nodes = null;
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
