'use strict';
// A fresh redis-server for one benchmark run: a free loopback port, no persistence
// (`--save '' --appendonly no`, set by the test helper), stopped at the end. If the process
// is interrupted (Ctrl-C) or dies, the server is killed with it.

const { execFileSync } = require('child_process');
const { startRedis, redisAvailable } = require('../../__test__/helpers/redis.js');

function redisServerVersion() {
  try {
    const out = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
    const m = /v=(\S+)/.exec(out);
    return m ? m[1] : out.trim();
  } catch {
    return null;
  }
}

// → { url, port, version, client(), stop() }: the test helper's shape (client() is a plain
// ioredis client, disconnected by stop()), plus the server version. `stop()` is idempotent.
async function startBenchRedis() {
  if (!redisAvailable()) {
    throw new Error('redis-server is not installed (apt-get install redis-server)');
  }
  const server = await startRedis();
  let stopped = false;
  const onSignal = (signal) => {
    // Kill the server, then die of the same signal as we would have without this handler.
    stop().finally(() => process.kill(process.pid, signal));
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await server.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { url: server.url, port: server.port, version: redisServerVersion(), client: () => server.client(), stop };
}

// `startRedis` too, for benchmarks written against the test helper's name.
module.exports = { startBenchRedis, startRedis: startBenchRedis, redisServerVersion };
