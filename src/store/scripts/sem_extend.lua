-- Extends a permit: only a live holder's expiry moves to now + TTL.
-- KEYS[1] holders (sorted set, owner -> expiry in ms); ARGV[1] owner token, ARGV[2] TTL in ms.
-- Returns 1 if extended, else 0.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
-- ZADD XX INCR 0: the member's score, or nil when it is not a (live) holder
if not redis.call('ZADD', KEYS[1], 'XX', 'INCR', 0, ARGV[1]) then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
