'use strict';
// Every answer of the native side that is more than a scalar, decoded in one place. Each
// decoder mirrors the encoder of the same name in src/api/replies.rs; __test__/replies.test.js
// sends every encoder's sample answer through the real delivery path and checks its decoder.
// The flat shapes (arrays instead of objects) keep the hot paths free of JSON; the decoders
// give them names here, so no other module reads a reply by position.

// PING on every data node: JSON → [{ address, role, pong, ms, circuit, error? }].
function pingNodes(json) {
  return JSON.parse(json);
}

// A miss read: [rev, t] or [rev, t, value] → { rev, t, value } (`value` a string written
// since the miss, or null; `rev` and `t` guard the fill of the load that follows).
function miss(r) {
  return { rev: r[0], t: r[1], value: r.length > 2 ? r[2] : null };
}

const LEASES = { 1: 'taken', 0: 'held', '': 'none' };

// The general cache's miss read: [rev, t, lease] or [rev, t, lease, value] → { rev, t, lease,
// value }: `lease` is wrap's `lock` ('taken' for this caller, 'held' by another, 'none').
function cacheMiss(r) {
  return { rev: r[0], t: r[1], lease: LEASES[r[2]], value: r.length > 3 ? r[3] : null };
}

// Sessions found by a scan: [hash, json, hash, json, …] → [{ hash, json }, …].
function sessionList(r) {
  const out = [];
  for (let i = 0; i + 1 < r.length; i += 2) out.push({ hash: r[i], json: r[i + 1] });
  return out;
}

// A counter after a hit, a peek, an undo or a block: [total, msUntilReset], written into the
// hit record `into` (the limiter's hot path allocates nothing per answer).
function counter(r, into) {
  into.total = r[0];
  into.leftMs = r[1];
  return into;
}

// An IP's live counters: JSON → { [endpoint]: { current, limit, resetIn } }.
function rateStatus(json) {
  return JSON.parse(json);
}

// A lock acquire: ['1', owner, fence] → { granted: true, owner, fence };
// ['0', holder, pttlMs] → { granted: false, holder, pttlMs }.
function lockAcquired(r) {
  return r[0] === '1' ? { granted: true, owner: r[1], fence: Number(r[2]) } : { granted: false, holder: r[1], pttlMs: Number(r[2]) };
}

// A lock's holder: [owner, pttlMs] → { owner, pttlMs }; [] (free) → null.
function lockHolder(r) {
  return r.length === 0 ? null : { owner: r[0], pttlMs: Number(r[1]) };
}

// A semaphore acquire: ['1', owner, fence, held] → { granted: true, owner, fence, held };
// ['0', held, retryMs] → { granted: false, held, retryMs }.
function semAcquired(r) {
  return r[0] === '1'
    ? { granted: true, owner: r[1], fence: Number(r[2]), held: Number(r[3]) }
    : { granted: false, held: Number(r[1]), retryMs: Number(r[2]) };
}

// A semaphore's live holders: [held, msUntilTheEarliestExpires or -1] → { held, nextExpiryMs }.
function semStatus(r) {
  return { held: r[0], nextExpiryMs: r[1] };
}

module.exports = { pingNodes, miss, cacheMiss, sessionList, counter, rateStatus, lockAcquired, lockHolder, semAcquired, semStatus };
