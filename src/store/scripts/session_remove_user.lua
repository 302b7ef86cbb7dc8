-- Removes every session of a user and the user's index; returns how many sessions existed.
-- KEYS[1] the user's session index, KEYS[2] its revision key; ARGV[1] prefix of session keys,
-- ARGV[2] revision TTL in ms.
-- The index's revision is bumped: every fill of this user's sessions whose load began before
-- is refused (session_fill.lua checks it in the same script as its SET and index add, so the
-- sessions' own revisions need no bump here: O(1) more per call, not O(sessions)).
rev_bump(KEYS[2], ARGV[2])
local kind = redis.call('TYPE', KEYS[1])['ok']
local members = {}
if kind == 'zset' then
  members = redis.call('ZRANGE', KEYS[1], 0, -1)
elseif kind == 'set' then -- left by the previous version
  members = redis.call('SMEMBERS', KEYS[1])
end
local n = 0
for _, m in ipairs(members) do
  n = n + redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
return n
