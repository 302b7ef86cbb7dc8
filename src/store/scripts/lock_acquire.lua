-- Grants a lock and its fencing token in one step, or names the holder.
-- KEYS[1] lock key, KEYS[2] its fence counter (same cluster slot: see keys::lock_fence_key)
-- ARGV[1] owner token, ARGV[2] lock TTL in ms, ARGV[3] fence counter TTL in ms
-- Granted: {1, fence}; busy: {0, holder, PTTL of the holder}.
--
-- The fence is INCR with a floor of the server clock in microseconds: it grows by at least one
-- with every grant while the counter lives, and a counter that expired (a week idle) or was
-- lost (flush, failover to a replica that never saw it) restarts above every fence it could
-- have handed out before, instead of at 1.
if redis.replicate_commands then redis.replicate_commands() end
-- read before any write: a foreign value here fails the script with nothing written
local last = tonumber(redis.call('GET', KEYS[2])) or 0
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
end
local t = redis.call('TIME')
local fence = math.max(last + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
local text = string.format('%.0f', fence)
redis.call('SET', KEYS[2], text, 'PX', ARGV[3])
return {1, text}
