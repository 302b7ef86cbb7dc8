'use strict';
// The monotonic clock (performance.now(), ms) read once per run of synchronous code: a read
// costs a system call on some hosts (≈ 200 ns), and the calls started together (a burst, a
// Promise.all) or answered in one batch share it. The reading expires at the next microtask
// checkpoint, so it is never older than the synchronous run that asks; it can be earlier than
// the exact moment, never later.

const { performance } = require('perf_hooks');

let clock = 0;
let clockSet = false;
const expireClock = () => {
  clockSet = false;
};

function now() {
  if (!clockSet) {
    clock = performance.now();
    clockSet = true;
    queueMicrotask(expireClock);
  }
  return clock;
}

module.exports = { now };
