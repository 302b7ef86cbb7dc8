'use strict';
// A held lock or semaphore permit as an object: `await using lock = await distributedLock.lock(…)`.

// Node 20 and 22 define Symbol.asyncDispose as Symbol.for('nodejs.asyncDispose') (what their
// own disposable objects use); Node 24's V8 has the language's own symbol. Defined here when
// a runtime has neither, with the value Node uses, so TypeScript's downlevel `await using`
// and Node's own helpers find the same method.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose') });
}

// Holds `lease` (already started) until release() or disposal.
class Held {
  constructor(fields, lease) {
    Object.assign(this, fields);
    this.signal = lease.signal;
    Object.defineProperty(this, 'lease', { value: lease });
  }

  // Stops the watchdog and releases → true if this call freed it (false: already released,
  // lost, or Redis failed; it then frees itself at its TTL). Idempotent.
  release() {
    return this.lease.end();
  }

  [Symbol.asyncDispose]() {
    return this.release().then(() => undefined);
  }
}

module.exports = { Held };
