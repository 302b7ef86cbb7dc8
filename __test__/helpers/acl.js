'use strict';
// The least-privilege Redis user of the README ("Least privilege"): the exact commands the
// package needs, on its keys and channels only, and a server where the default user is off.
//
// Users of the server:
//   admin  — all rights (the test helpers inspect the server with it);
//   bisman — the README's line: keyPrefix 'erp:' → ~erp:* and &erp:* (the recommended setup);
//   suite  — the same commands on every key and channel (the behavioural suites use many key
//            prefixes and keys of their own).

const { startRedis } = require('./redis');

// Commands sent directly, then those run inside the Lua scripts (ACL checks both).
const COMMANDS = [
  '+ping', '+get', '+set', '+del', '+unlink', '+scan', '+publish', '+subscribe', '+unsubscribe',
  '+evalsha', '+eval', '+script|load', '+select',
  '+exists', '+incr', '+pexpire', '+pttl', '+time', '+sadd', '+srem', '+smembers',
  '+type', '+zadd', '+zrem', '+zrange', '+zremrangebyscore',
  '+hset', '+hdel', '+hgetall', '+hkeys', '+client|setname',
];

// The rules after `ACL SETUSER <user> on ><password>`: keys and channels under `prefix`
// (every key and channel when it is empty), then the commands.
function aclRules(prefix = 'erp:') {
  const scope = prefix ? [`~${prefix}*`, `&${prefix}*`] : ['~*', '&*'];
  return ['resetkeys', scope[0], 'resetchannels', scope[1], '-@all', ...COMMANDS];
}

// The README's line.
function aclSetUserLine(user = 'bisman', password = '<password>', prefix = 'erp:') {
  return `ACL SETUSER ${user} on >${password} ${aclRules(prefix).join(' ')}`;
}

const PREFIX = 'erp:';
const APP = { user: 'bisman', pass: 'app-s3cret-pw' };
const SUITE = { user: 'suite', pass: 'suite-s3cret-pw' };
const ADMIN = { user: 'admin', pass: 'admin-s3cret-pw' };

// A server with `default` off, and admin, bisman and suite. `url` authenticates as `as`.
function startAclRedis({ as = SUITE } = {}) {
  return startRedis({
    username: ADMIN.user,
    password: ADMIN.pass,
    app: as,
    args: [
      '--user', 'default', 'off',
      '--user', ADMIN.user, 'on', `>${ADMIN.pass}`, '~*', '&*', '+@all',
      '--user', APP.user, 'on', `>${APP.pass}`, ...aclRules(PREFIX),
      '--user', SUITE.user, 'on', `>${SUITE.pass}`, ...aclRules(''),
    ],
  });
}

module.exports = { aclRules, aclSetUserLine, startAclRedis, APP, SUITE, ADMIN, PREFIX, COMMANDS };
