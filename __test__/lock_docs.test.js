'use strict';
// The snippets of docs/locks.md (cancellation, handles, semaphores) run as written against
// memory://, with the app's own functions (capture, buildReport, db…) as small recorders.
// `await using` blocks are compiled by tsc for ES2022 first (Node 20 cannot parse them).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const vm = require('vm');
const { spawnSync } = require('child_process');
const { createCache } = require('..');

const DOC = fs.readFileSync(path.join(__dirname, '..', 'docs', 'locks.md'), 'utf8');
const TSC = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');

// The ```js blocks of the section titled `title`.
function snippets(title) {
  const start = DOC.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `section ${title}`);
  const end = DOC.indexOf('\n## ', start + 1);
  const section = DOC.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
}

// `await using` → what tsc emits for ES2022 (CommonJS helpers included).
function lowerAwaitUsing(code) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-doc-'));
  try {
    fs.writeFileSync(path.join(dir, 's.ts'), `export async function run(ctx: any): Promise<void> {\n${code}\n}\n`);
    const r = spawnSync(process.execPath, [TSC, '--target', 'es2022', '--module', 'commonjs', '--lib', 'esnext', '--noImplicitAny', 'false', '--outDir', dir, path.join(dir, 's.ts')], { encoding: 'utf8', timeout: 120000 });
    // type errors are irrelevant here (the snippet's free names come from ctx at run time)
    const out = path.join(dir, 's.js');
    assert.ok(fs.existsSync(out), `tsc emitted nothing: ${r.stdout}${r.stderr}`);
    return fs.readFileSync(out, 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Runs `code` as the body of an async function whose free names come from `ctx`.
function runSnippet(code, ctx) {
  const sandbox = { ...ctx, console: { log: (...a) => ctx.logged.push(a.join(' ')) }, AbortController, AbortSignal, setTimeout, Symbol, Error, Promise };
  if (/\bawait using\b/.test(code)) {
    const js = lowerAwaitUsing(code.replace(/^const \{ distributedLock \} = require\('@bisman\/cache'\);$/m, ''));
    const mod = { exports: {} };
    vm.runInNewContext(js, { ...sandbox, module: mod, exports: mod.exports, require });
    const names = Object.keys(ctx).join(', ');
    return vm.runInNewContext(`(async () => { const { ${names} } = ctx; return run(ctx); })()`, { ctx, run: mod.exports.run });
  }
  sandbox.require = (name) => {
    assert.equal(name, '@bisman/cache');
    return { distributedLock: ctx.distributedLock };
  };
  return vm.runInNewContext(`(async () => {\n${code}\n})()`, sandbox);
}

describe('docs/locks.md snippets', () => {
  let cache;
  let ctx;

  before(() => {
    cache = createCache({ url: `memory://docs-${crypto.randomBytes(4).toString('hex')}` });
  });
  after(() => cache.shutdown());

  const context = () => {
    const calls = [];
    return {
      calls,
      logged: [],
      distributedLock: cache.distributedLock,
      paymentId: crypto.randomBytes(4).toString('hex'),
      db: { payments: { update: async (row, opts) => calls.push(['update', row.fence, opts && opts.signal.aborted]) } },
      work: async (fence, signal) => calls.push(['work', fence, signal.aborted]),
      buildReport: async () => {
        calls.push(['report']);
        return 'report';
      },
    };
  };

  // The handle snippets: held inside the block (a fenced update), released after it.
  it('Handles and `await using`: both snippets hold the lock, then release it', async () => {
    const blocks = snippets('Handles and `await using`');
    assert.equal(blocks.length, 2);
    for (const code of blocks) {
      ctx = context();
      await runSnippet(code, ctx);
      assert.equal(ctx.calls.length, 1);
      assert.ok(Number.isSafeInteger(ctx.calls[0][1]), 'the fence reached the write');
      assert.equal(ctx.calls[0][2], false);
      assert.deepEqual(await cache.distributedLock.isLocked('payment', ctx.paymentId), { locked: false });
    }
  });

  // The semaphore snippet: withPermit runs, acquire grants and returns, no permit left taken.
  it('Counting semaphores: the snippet runs and returns every permit', async () => {
    const [code] = snippets('Counting semaphores');
    ctx = context();
    await runSnippet(code, ctx);
    assert.deepEqual(ctx.calls, [['report'], ['report']]);
    assert.equal((await cache.distributedLock.semaphore('report-jobs', 3).status()).held, 0);
  });

  // The cancellation snippet: the route handler answers under the lock, and a client that
  // leaves while the route waits on a busy lock ends the wait with no answer; the
  // AbortSignal.timeout line runs.
  it('Cancellation: the route answers under the lock and stops waiting when the client leaves', async () => {
    const [code] = snippets('Cancellation');
    ctx = context();
    let route;
    ctx.app = { post: (p, handler) => (route = handler) };
    ctx.capture = async (id, { signal, fence }) => ({ id, fence, aborted: signal.aborted });
    await runSnippet(code, ctx);
    assert.equal(typeof route, 'function');
    const request = (id) => {
      const listeners = {};
      const res = { statusCode: 200, body: undefined, status(c) { this.statusCode = c; return this; }, json(b) { this.body = b; return this; } };
      return { req: { params: { id }, on: (ev, fn) => (listeners[ev] = fn) }, res, listeners };
    };
    const ok = request('p1');
    await route(ok.req, ok.res);
    assert.equal(ok.res.body.id, 'p1');
    assert.equal(ok.res.body.aborted, false);
    const held = await cache.distributedLock.acquire('payment', 'p2', { ttlSec: 10 });
    const busy = request('p2');
    const pending = route(busy.req, busy.res);
    await new Promise((r) => setTimeout(r, 50));
    busy.listeners.close(); // the client leaves while the route waits
    await pending;
    assert.equal(busy.res.body, undefined, 'no answer to a client that left');
    assert.ok(await cache.distributedLock.release('payment', 'p2', held.owner));
  });
});
