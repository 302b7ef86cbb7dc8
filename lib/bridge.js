'use strict';
// The JS half of the batched boundary: every native operation gets an id; results come back
// in batches and resolve the waiting promises. A batch is [head, values]: head is a
// Float64Array with one row per answer (id, kind, two numbers), values the answers that are
// not flags or numbers, in order (see Batch in src/bridge.rs).

const { NativeCache } = require('./native');
const { overloadError } = require('./errors');
const { BATCH } = require('./rules');

const ROW = BATCH.row;
const K_VALUE = BATCH.value;
const K_NIL = BATCH.nil;
const K_FALSE = BATCH.boolFalse;
const K_TRUE = BATCH.boolTrue;
const K_NUM = BATCH.num;
const K_PAIR = BATCH.pair;
const K_ERROR = BATCH.error;

// An operation's id is `tag * SLOTS + slot`: `slot` indexes the arrays that hold its waiting
// promise (reused once it settles: no record and no Map entry per call), `tag` counts ids, so
// an answer that comes for a slot's earlier occupant is recognised and dropped.
const SLOT_BITS = 20;
const SLOTS = 1 << SLOT_BITS;
const TAG_MAX = (1 << (31 - SLOT_BITS)) - 1;
const noop = () => {};

// One executor for every promise (no closure per call): it leaves the resolving functions
// here, and wait() takes them at once.
let takenResolve;
let takenReject;
function take(resolve, reject) {
  takenResolve = resolve;
  takenReject = reject;
}

class Bridge {
  constructor(nativeOptions) {
    this.tag = 0;
    // Per slot: the waiting promise's functions, its handlers and argument, the id in it
    // (0 when free).
    this.ids = [];
    this.resolves = [];
    this.rejects = [];
    this.onValues = [];
    this.onErrors = [];
    this.args = [];
    this.free = [];
    this.inFlight = 0;
    // A weak threadsafe function delivers the batches, so an idle cache never keeps Node
    // alive; this timer does while anything is in flight.
    this.keepAlive = setInterval(noop, 0x7fffffff);
    this.keepAlive.unref();
    this.native = new NativeCache(nativeOptions, (batch) => this.onBatch(batch));
    // The hottest calls (a session read by token, a rate-limit hit and a permission check,
    // each once per request) go through hand-written Node-API entries that do what the
    // methods do, without napi-rs' per-call wrapper (src/api/fast.rs).
    this.native.sessionGetByToken = this.native.fastSessionGetByToken();
    this.native.rateHit = this.native.fastRateHit();
    this.native.permCheckModule = this.native.fastPermCheckModule();
    this.native.permCheckPage = this.native.fastPermCheckPage();
    this.closed = false;
    // The direct paths queue their commands without waking the native I/O thread (each
    // wake is a thread switch on both sides); a flush sends what was queued in one write.
    // Operations started while answers are being delivered (the continuations of awaited
    // calls) are flushed at the end of the tick, so Redis works on them while the rest of
    // the answers are handled. Operations started by anything else (an HTTP request, a
    // timer) are flushed once per turn of the event loop (setImmediate), so 50 requests
    // that arrive together leave in one write, not 50.
    this.flushQueued = !this.native.pipelined(); // never queued when nothing needs a flush
    this.delivering = false;
    this.flushNow = () => {
      this.flushQueued = false;
      if (!this.closed) this.native.flush();
    };
    this.delivered = () => {
      this.delivering = false;
    };
  }

  // After every native operation started: the flush is queued once.
  queueFlush() {
    if (this.flushQueued) return;
    this.flushQueued = true;
    if (this.delivering) process.nextTick(this.flushNow);
    else setImmediate(this.flushNow);
  }

  // Reserves a slot for the next operation and answers its id. wait(id) then fills the slot,
  // or release(id) frees it (an operation that answered at once or threw). Reserving makes
  // the id unique at once, even if another operation starts before this one waits.
  nextId() {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.ids.length;
      if (slot >= SLOTS) throw overloadError(`more than ${SLOTS} cache operations in flight`);
      this.ids.push(0);
      this.resolves.push(undefined);
      this.rejects.push(undefined);
      this.onValues.push(undefined);
      this.onErrors.push(undefined);
      this.args.push(undefined);
    }
    this.tag = this.tag >= TAG_MAX ? 1 : this.tag + 1;
    const id = this.tag * SLOTS + slot;
    this.ids[slot] = id;
    return id;
  }

  // Frees the slot of `id`, which will never wait: an answer for it is dropped.
  release(id) {
    const slot = id & (SLOTS - 1);
    if (this.ids[slot] !== id) return;
    this.ids[slot] = 0;
    this.free.push(slot);
  }

  // The promise of operation `id`. `onValue(v)` maps the raw reply (it may return a promise);
  // `onError(err)`, when given, turns a failure into a value (the fallback path).
  // `arg` is handed to both as their second argument: hot callers pass handlers made once
  // and their per-call state in `arg`, instead of making closures on every call.
  wait(id, onValue, onError, arg) {
    if (this.inFlight++ === 0) this.keepAlive.ref();
    const slot = id & (SLOTS - 1);
    const promise = new Promise(take);
    this.resolves[slot] = takenResolve;
    this.rejects[slot] = takenReject;
    this.onValues[slot] = onValue;
    this.onErrors[slot] = onError;
    this.args[slot] = arg;
    return promise;
  }

  onBatch(batch) {
    if (!this.delivering) {
      this.delivering = true;
      setImmediate(this.delivered);
    }
    const { ids, resolves, rejects, onValues, onErrors, args, free } = this;
    const head = batch[0];
    const values = batch[1];
    let next = 0;
    for (let i = 0; i < head.length; i += ROW) {
      const id = head[i];
      const kind = head[i + 1];
      let value;
      if (kind === K_VALUE || kind === K_ERROR) value = values[next++];
      else if (kind === K_PAIR) value = [head[i + 2], head[i + 3]];
      else if (kind === K_NUM) value = head[i + 2];
      else if (kind === K_NIL) value = null;
      else if (kind === K_TRUE) value = true;
      else if (kind === K_FALSE) value = false;
      else continue;
      const failed = kind === K_ERROR;
      const slot = id & (SLOTS - 1);
      if (ids[slot] !== id) continue;
      const resolve = resolves[slot];
      const reject = rejects[slot];
      const onValue = onValues[slot];
      const onError = onErrors[slot];
      const arg = args[slot];
      ids[slot] = 0;
      resolves[slot] = undefined;
      rejects[slot] = undefined;
      onValues[slot] = undefined;
      onErrors[slot] = undefined;
      args[slot] = undefined;
      free.push(slot);
      this.inFlight--;
      try {
        if (!failed) resolve(onValue === undefined ? value : onValue(value, arg));
        else if (onError !== undefined) resolve(onError(value, arg));
        else reject(value);
      } catch (err) {
        reject(err);
      }
    }
    if (this.inFlight === 0) this.keepAlive.unref();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    clearInterval(this.keepAlive);
  }
}

module.exports = { Bridge };
