'use strict';
// Server-side faults on a RedisServer of ./redis.js (through a plain ioredis admin client),
// and the process-wide guards every fault suite installs.

const { sleep } = require('./redis');

// CLIENT PAUSE: Redis stops answering clients (ALL commands, or WRITE ones) for `ms`.
async function clientPause(server, ms, mode = 'ALL') {
  const admin = server.client();
  await admin.call('CLIENT', 'PAUSE', String(ms), mode);
}

// CLIENT KILL TYPE pubsub: every subscriber connection is closed by the server.
// → the number of connections killed.
async function killPubSubClients(server) {
  const admin = server.client();
  return admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
}

// maxmemory 1mb + noeviction, then filled until writes fail with OOM. `fill` bytes of our
// own junk keys (without TTL) are written by the admin client; → the admin client.
async function makeOom(server, { limit = '1mb' } = {}) {
  const admin = server.client();
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'maxmemory', limit);
  const chunk = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 200; i++) {
    try {
      await admin.set(`__oomfill:${i}`, chunk);
    } catch (err) {
      if (/OOM/.test(err.message)) return admin;
      throw err;
    }
  }
  throw new Error('could not fill Redis to OOM within 200 writes');
}

// Undoes makeOom.
async function clearOom(server) {
  const admin = server.client();
  await admin.config('SET', 'maxmemory', '0');
  const keys = await admin.keys('__oomfill:*');
  if (keys.length) await admin.del(...keys);
}

// INFO commandstats → { get: calls, set: calls, … } (lower-case command names).
async function commandStats(server) {
  const admin = server.client();
  const text = await admin.info('commandstats');
  const out = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

// Counts unhandled rejections and uncaught exceptions in this test file; assert both are 0.
function guardProcess() {
  const g = { unhandled: 0, uncaught: 0, reasons: [] };
  process.on('unhandledRejection', (reason) => {
    g.unhandled++;
    g.reasons.push(reason);
  });
  process.on('uncaughtException', (err) => {
    g.uncaught++;
    g.reasons.push(err);
  });
  return g;
}

// Runs fn() and returns its duration in ms (monotonic), with its result or error.
async function timed(fn) {
  const t0 = performance.now();
  let value, error;
  try {
    value = await fn();
  } catch (err) {
    error = err;
  }
  return { ms: performance.now() - t0, value, error };
}

// Polls `check` (async → truthy) every `everyMs` until true or `timeoutMs`; → ms waited or -1.
async function waitFor(check, { timeoutMs = 10000, everyMs = 20 } = {}) {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await check()) return performance.now() - t0;
    await sleep(everyMs);
  }
  return -1;
}

// Settles `p`, or rejects after `ms` (so that a hang fails the test instead of stalling it).
function within(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

module.exports = { clientPause, killPubSubClients, makeOom, clearOom, commandStats, guardProcess, timed, waitFor, within };
