-- Grants one permit of a counting semaphore and its fencing token in one step, or says when
-- the first permit frees.
-- KEYS[1] holders: a sorted set, owner token -> expiry (server clock, ms); KEYS[2] the fence
-- counter (both keys carry the semaphore's hash tag: same cluster slot)
-- ARGV[1] owner token, ARGV[2] permit TTL in ms, ARGV[3] permits (N), ARGV[4] fence counter
-- TTL in ms
-- Granted: {1, fence, holders now}; full: {0, N, ms until the earliest holder expires}.
--
-- Holders whose expiry has passed are dropped first, so a crashed holder frees its permit when
-- its TTL ends. The fence is INCR with a floor of the server clock in microseconds, as for
-- locks (lock_acquire.lua): it grows with every grant of this semaphore, also after the
-- counter expired or was lost.
if redis.replicate_commands then redis.replicate_commands() end
-- read before any write: a foreign value here fails the script with nothing written
local last = tonumber(redis.call('GET', KEYS[2])) or 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- the first N live holders by expiry (at most N: O(log n + N), and only the commands of the
-- least-privilege ACL line)
local permits = tonumber(ARGV[3])
local live = redis.call('ZRANGE', KEYS[1], 0, permits - 1, 'WITHSCORES')
local held = #live / 2
if held >= permits then
  return {0, held, tonumber(live[2]) - now}
end
local fence = math.max(last + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
local text = string.format('%.0f', fence)
redis.call('SET', KEYS[2], text, 'PX', ARGV[4])
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
-- the set lives at least as long as its latest holder
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return {1, text, held + 1}
