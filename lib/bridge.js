'use strict';
// The JS half of the batched boundary: every native operation gets an id; results come back
// in batches ([id, value, …], negative id = error) and resolve the waiting promises.

const { NativeCache } = require('./native');

const MAX_ID = 0x7fffffff;
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
    this.seq = 0;
    this.pending = new Map();
    // A weak threadsafe function delivers the batches, so an idle cache never keeps Node
    // alive; this timer does while anything is in flight.
    this.keepAlive = setInterval(noop, 0x7fffffff);
    this.keepAlive.unref();
    this.native = new NativeCache(nativeOptions, (batch) => this.onBatch(batch));
    this.closed = false;
    // The direct paths queue their commands without waking the native I/O thread; one
    // flush per tick sends all the commands the tick started in one write.
    this.flushQueued = false;
    this.flushNow = () => {
      this.flushQueued = false;
      if (!this.closed) this.native.flush();
    };
  }

  // After every native operation started: the tick's flush is queued once.
  queueFlush() {
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(this.flushNow);
  }

  nextId() {
    const id = this.seq >= MAX_ID ? 1 : this.seq + 1;
    this.seq = id;
    return id;
  }

  // The promise of operation `id`. `onValue(v)` maps the raw reply (it may return a promise);
  // `onError(err)`, when given, turns a failure into a value (the fallback path).
  // `arg` is handed to both as their second argument: hot callers pass handlers made once
  // and their per-call state in `arg`, instead of making closures on every call.
  wait(id, onValue, onError, arg) {
    if (this.pending.size === 0) this.keepAlive.ref();
    const promise = new Promise(take);
    this.pending.set(id, { resolve: takenResolve, reject: takenReject, onValue, onError, arg });
    return promise;
  }

  onBatch(batch) {
    const pending = this.pending;
    for (let i = 0; i < batch.length; i += 2) {
      let id = batch[i];
      const value = batch[i + 1];
      const failed = id < 0;
      if (failed) id = -id;
      const p = pending.get(id);
      if (p === undefined) continue;
      pending.delete(id);
      try {
        if (!failed) p.resolve(p.onValue === undefined ? value : p.onValue(value, p.arg));
        else if (p.onError !== undefined) p.resolve(p.onError(value, p.arg));
        else p.reject(value);
      } catch (err) {
        p.reject(err);
      }
    }
    if (pending.size === 0) this.keepAlive.unref();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    clearInterval(this.keepAlive);
  }
}

module.exports = { Bridge };
