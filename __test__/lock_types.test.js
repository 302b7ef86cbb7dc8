'use strict';
// The lock declarations of index.d.ts under `tsc --strict` (the consumer project's settings):
// the guide's `Payment locked by: ${lock.heldBy}` line, lock() handles with `await using`,
// semaphores, the `signal` option; and `@ts-expect-error` lines that fail if a type decayed.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const TSC = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const PROJECT = path.join(__dirname, 'ts-consumer', 'tsconfig.json');

const SOURCE = `import { distributedLock, type LockHandle, type PermitResult, type Semaphore } from '@bisman/cache';

export async function guide(paymentId: number): Promise<void> {
  const lock = await distributedLock.acquirePaymentLock(paymentId);
  if (!lock.acquired) throw new Error(\`Payment locked by: \${lock.heldBy}\`);
  await distributedLock.release('payment', paymentId, lock.owner);
}

export async function handles(signal: AbortSignal): Promise<number> {
  await using lock = await distributedLock.lock('payment', 7, { ttlSec: 10, waitMs: 2000, signal });
  const h: LockHandle = lock;
  const fence: number = h.fence;
  h.signal.throwIfAborted();
  const freed: boolean = await h.release();
  // @ts-expect-error the fence is a number
  const bad: string = h.fence;
  void [fence, freed, bad];
  return fence;
}

export async function semaphores(signal: AbortSignal): Promise<void> {
  const sem: Semaphore = distributedLock.semaphore('reports', 3, { ttlSec: 60 });
  const p: PermitResult = await sem.acquire({ waitMs: 1000, signal });
  if (p.acquired) {
    const fence: number = p.fence;
    const freed: boolean = await p.release();
    void [fence, freed];
  } else if (p.error === undefined) {
    const retry: number = p.retryInMs;
    void retry;
  } else {
    const code: string = p.code;
    void code;
  }
  const { result } = await sem.withPermit(async ({ signal: s, fence }) => (s.aborted ? 0 : fence), { signal });
  const n: number = result;
  await using permit = await sem.permit();
  const owner: string = permit.owner;
  // @ts-expect-error permits is a number
  distributedLock.semaphore('reports', '3');
  // @ts-expect-error signal must be an AbortSignal
  await distributedLock.acquire('payment', 1, { signal: 'stop' });
  void [n, owner];
}
`;

describe('lock types', () => {
  it('the guide line, lock() handles with await using, semaphores compile with tsc --strict', () => {
    const dir = fs.mkdtempSync(path.join(__dirname, 'ts-consumer', '.tmp-locks-'));
    try {
      fs.writeFileSync(path.join(dir, 'locks.ts'), SOURCE);
      const cfg = JSON.parse(fs.readFileSync(PROJECT, 'utf8'));
      cfg.files = ['locks.ts'];
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(cfg));
      const r = spawnSync(process.execPath, [TSC, '-p', path.join(dir, 'tsconfig.json'), '--strict', '--noEmit'], { encoding: 'utf8', timeout: 120000 });
      assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
