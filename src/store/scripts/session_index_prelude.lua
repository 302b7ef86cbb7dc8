-- Prelude of the scripts that touch a user's session index (put in front of each of them).
-- The index `session:user:{id}` is a sorted set: token hash -> the expiry of its session in ms
-- since the epoch by this server's clock, so expired members leave it by score in O(log n + m).
-- The previous version kept a plain set there: one found is converted once, each member scored
-- with the set's own expiry, which was never sooner than any of its sessions' (so no live
-- session leaves the index early; the dead ones leave when that time passes). Any other type
-- there was left by the previous version's key collision (a session stored under the token
-- hash 'user:{id}', which no reader can reach any more) and is deleted.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function ms(n)
  return string.format('%d', n)
end

local function zindex(key, now)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'zset' or kind == 'none' then return end
  if kind ~= 'set' then
    redis.call('DEL', key)
    return
  end
  local left = redis.call('PTTL', key)
  if left < 0 then left = 3600000 end -- no TTL: a session lives one hour at most
  local members = redis.call('SMEMBERS', key)
  redis.call('DEL', key)
  local score = ms(now + left)
  for i = 1, #members, 500 do
    local args = {}
    for j = i, math.min(i + 499, #members) do
      args[#args + 1] = score
      args[#args + 1] = members[j]
    end
    redis.call('ZADD', key, unpack(args))
  end
  if #members > 0 then redis.call('PEXPIRE', key, left) end
end

-- Adds `member` (a session living `ttl` ms) to the index, which lives at least as long as its
-- newest session, never without a TTL. O(log n + m) for n members of whom m have expired.
-- Members whose session has expired leave it whenever it grows (only a new member grows it,
-- so it never holds more than its live sessions plus those that expired since the last
-- growth; the readers skip and prune those by score and existence). The TTL is extended a
-- minute past the session's, so the writes that follow within that minute skip it. A refresh
-- of a session the index names is then SET, TIME, ZADD and PTTL: setSession is bound by Redis'
-- time in these scripts.
local INDEX_TTL_SLACK_MS = 60000

local function index_add(key, member, ttl)
  local now = now_ms()
  local score = ms(now + ttl)
  local added = redis.pcall('ZADD', key, score, member)
  if type(added) == 'table' and added.err then
    -- not a sorted set: the previous version's plain set (converted) or a stray key (dropped)
    zindex(key, now)
    added = redis.call('ZADD', key, score, member)
  end
  if added == 1 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ms(now))
  end
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl + INDEX_TTL_SLACK_MS)
  end
end
