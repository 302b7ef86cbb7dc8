'use strict';
// OpenTelemetry spans for @bisman/cache, from its diagnostics_channel TracingChannel
// `bisman-cache:operation` (@opentelemetry/api is the app's dependency, not ours).
//
//   const { trace } = require('@opentelemetry/api');
//   const { instrumentBismanCache } = require('./opentelemetry'); // copy this file
//   const stop = instrumentBismanCache({ tracer: trace.getTracer('erp') });
//   …                                                            // stop() unsubscribes
//
// One CLIENT span per public operation (getSession, checkLimit, acquire, …), named
// `{db.operation.name} {keyFamily}`, with the database semantic-convention attributes:
// db.system.name = 'redis', db.operation.name, db.namespace (the database index), server.address
// and server.port (when the cache talks to one redis:// server), plus bisman_cache.service and
// bisman_cache.key_family. A call that rejects ends with status ERROR and error.type (its code).
// The channel never carries a token, an IP, an id or a value, so no span does.

const dc = require('diagnostics_channel');
const { trace, context: otelContext, SpanKind, SpanStatusCode } = require('@opentelemetry/api');

const CHANNEL = 'bisman-cache:operation';

function attributesOf(c) {
  const a = {
    'db.system.name': 'redis',
    'db.operation.name': c.operation,
    'bisman_cache.service': c.service,
  };
  if (c.keyFamily !== undefined) a['bisman_cache.key_family'] = c.keyFamily;
  if (c.dbIndex !== undefined) a['db.namespace'] = String(c.dbIndex);
  if (c.serverAddress !== undefined) a['server.address'] = c.serverAddress;
  if (c.serverPort !== undefined) a['server.port'] = c.serverPort;
  return a;
}

function instrumentBismanCache({ tracer = trace.getTracer('@bisman/cache') } = {}) {
  const spans = new WeakMap();
  const finish = (c) => {
    const span = spans.get(c);
    if (span === undefined) return;
    spans.delete(c);
    if (c.error !== undefined) {
      const err = c.error;
      span.setAttribute('error.type', (err && (err.code || err.name)) || 'Error');
      span.setStatus({ code: SpanStatusCode.ERROR, message: err && err.code ? String(err.code) : undefined });
    }
    span.end();
  };
  const handlers = {
    start(c) {
      const name = c.keyFamily !== undefined ? `${c.operation} ${c.keyFamily}` : c.operation;
      spans.set(c, tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes: attributesOf(c) }, otelContext.active()));
    },
    // A call that threw synchronously gets no asyncEnd: its span ends here.
    end(c) {
      if (c.error !== undefined) finish(c);
    },
    asyncStart() {},
    asyncEnd: finish,
    error() {},
  };
  const channel = dc.tracingChannel(CHANNEL);
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
}

module.exports = { instrumentBismanCache };
