-- Returns a permit: only the owner that holds it (and whose TTL has not ended) frees it.
-- KEYS[1] holders (sorted set, owner -> expiry in ms); ARGV[1] owner token.
-- Returns 1 if this call freed the permit, else 0.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZREM', KEYS[1], ARGV[1])
