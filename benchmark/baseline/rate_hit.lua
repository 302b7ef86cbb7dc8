-- The baseline's limiter script: the one-hit form of src/store/scripts/rate_hit.lua (which
-- takes any number of hits, since @bisman/cache sends the hits of one tick together), as an
-- ioredis limiter sends it, one call per hit.
-- Counts one hit in a fixed window, atomically: the counter never exists without its TTL
-- (INCR then EXPIRE as two commands once left keys without one: a permanent 429).
-- KEYS[1] the counter, KEYS[2] the IP's index of counters
-- ARGV[1] window in ms, ARGV[2] endpoint as given, ARGV[3] its limit
-- Returns { hits in this window (this one included), ms left in the window }.
local n = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  -- a new window starts with this hit (or a counter that somehow lost its TTL gets one back)
  left = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], left)
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  -- the index lives as long as its longest-lived counter, and never without a TTL
  if redis.call('PTTL', KEYS[2]) < left then
    redis.call('PEXPIRE', KEYS[2], left)
  end
end
return { n, left }
