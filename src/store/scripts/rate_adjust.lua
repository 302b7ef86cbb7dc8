-- Adjusts one live counter without counting a hit; never makes a counter without a TTL.
-- KEYS[1] the counter
-- ARGV[1] 'peek' | 'undo' | 'block'; for 'block': ARGV[2] the lockout in ms, ARGV[3] the count
--   to store if the counter is gone
-- 'peek':  reads it.
-- 'undo':  takes one hit back (DECR keeps the TTL); never below 0, and a counter that is gone
--          (or somehow has no TTL) is left alone, so an undo never outlives its window.
-- 'block': keeps the counter (over its limit) for at least ARGV[2] ms from now: a lockout longer
--          than the window; a counter that just expired is written back with that TTL.
-- Returns { hits, ms left } ({ 0, 0 } for a counter that is gone).
local v = redis.call('GET', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
local n = tonumber(v)
if ARGV[1] == 'block' then
  local ms = tonumber(ARGV[2])
  if n == nil then
    n = tonumber(ARGV[3])
    redis.call('SET', KEYS[1], n, 'PX', ms)
    return { n, ms }
  end
  if left < ms then
    redis.call('PEXPIRE', KEYS[1], ms)
    left = ms
  end
  return { n, left }
end
if n == nil or left <= 0 then
  return { 0, 0 }
end
if ARGV[1] == 'undo' and n > 0 then
  n = redis.call('DECR', KEYS[1])
end
return { n, left }
