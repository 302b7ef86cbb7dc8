'use strict';
// A Node child process for cross-process tests (`__test__/workers/*.js`), spoken to over IPC:
// `next(event)` answers the child's next message `{ event, … }` of that kind, whether it came
// before or after the call (rejecting after `ms`).

const path = require('path');
const { fork } = require('child_process');

function forkWorker(name, args) {
  const child = fork(path.join(__dirname, '..', 'workers', name), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox = [];
  const waiters = [];
  child.on('message', (m) => {
    const w = waiters.findIndex((x) => x.event === m.event);
    if (w >= 0) waiters.splice(w, 1)[0].resolve(m);
    else inbox.push(m);
  });
  const next = (event, ms = 5000) => {
    const i = inbox.findIndex((m) => m.event === event);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      waiters.push({ event, resolve });
      setTimeout(() => reject(new Error(`no ${event} from the child`)), ms).unref();
    });
  };
  return { child, next };
}

module.exports = { forkWorker };
