'use strict';
// The ERP guide's lock snippets (shared/seed/redis-safe-patterns.md, sections 4 and 9) run as
// written, through a `./cache` folder whose index.js is the one line the migration asks for.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startRedis } = require('./helpers/redis');
const { runApp } = require('./helpers/guide');

// Section 4 verbatim between the markers; the app supplies the ids and functions it names.
const SECTION_4 = `
const paymentId = 'pay-1001';
const approvalId = 42;
const taskId = 99;
const processApproval = async (id) => 'approved ' + id;
let reported = 0;
const generateDailyReport = async () => { reported++; };
(async () => {
// ---- section 4 ----
const { distributedLock } = require('./cache');

// Acquire lock
const lock = await distributedLock.acquire('payment', paymentId);
if (!lock.acquired) {
  throw new Error(\`Payment locked by: \${lock.heldBy}\`);
}

try {
  // ... process payment ...
} finally {
  await distributedLock.release('payment', paymentId, lock.owner);
}

// Or use withLock helper (auto-release)
const { result } = await distributedLock.withLock('approval', approvalId, async () => {
  return await processApproval(approvalId);
});

// Specialized locks
const taskLock = await distributedLock.acquireTaskLock(taskId);
const approvalLock = await distributedLock.acquireApprovalLock(approvalId);
const paymentLock = await distributedLock.acquirePaymentLock(paymentId);

// Extend lock for long operations
await distributedLock.extend('payment', paymentId, lock.owner, 60);

// Check lock status
const status = await distributedLock.isLocked('payment', paymentId);
// { locked: true, owner: 'node1:1234:abc123', ttl: 25 }

// Mutex for critical sections
await distributedLock.mutex('daily-report', async () => {
  await generateDailyReport();
});
// ---- end of section 4 ----

// section 9: Check lock status
const lockStatus = await distributedLock.isLocked('payment', paymentId);
// { locked: true, owner: 'node1:1234:abc', ttl: 25 }

console.log(JSON.stringify({ lock, result, taskLock, approvalLock, paymentLock, status, lockStatus, reported }));
await require('./cache').shutdown();
})();
`;

describe("the ERP guide's lock snippets run as written", () => {
  let server;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  for (const name of ['redis', 'memory']) {
    it(`section 4 (distributed locks) and section 9 isLocked on ${name}`, async () => {
      const r = await runApp(SECTION_4, { REDIS_URL: name === 'redis' ? server.url : 'memory://' });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.lock.acquired, true);
      assert.match(out.lock.owner, /^[^:]+:\d+:[0-9a-f]{32}$/);
      assert.equal(out.result, 'approved 42');
      for (const l of [out.taskLock, out.approvalLock, out.paymentLock]) assert.equal(l.acquired, true);
      assert.equal(out.paymentLock.fence > out.lock.fence, true, 'the payment lock was granted again, with a larger fence');
      // the extend by the released owner changed nothing: the status names the new holder
      assert.equal(out.status.locked, true);
      assert.equal(out.status.owner, out.paymentLock.owner);
      assert.equal(out.status.ttl, 30);
      assert.deepEqual(out.lockStatus.owner, out.paymentLock.owner);
      assert.equal(out.reported, 1);
    });
  }
});
