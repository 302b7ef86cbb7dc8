-- Counts one hit in a fixed window for each of n calls (n ≥ 1: the pipeline sends the hits one
-- tick of the event loop starts as one call, see Batch in script.rs), each atomically: a
-- counter never exists without its TTL (INCR then EXPIRE as two commands once left keys
-- without one: a permanent 429).
-- Call i: KEYS[2i-1] its counter, KEYS[2i] the IP's index of counters; ARGV[3i-2] window in
-- ms, ARGV[3i-1] endpoint as given, ARGV[3i] its limit.
-- Returns, for one call, { hits in this window (this one included), ms left in the window }
-- or its error; for n calls, the array of their replies, where a call that failed holds its
-- error (the others' hits still count: a script's writes are never taken back).
local function hit(counter, index, window, endpoint, limit)
  local n = redis.call('INCR', counter)
  local left = redis.call('PTTL', counter)
  if left < 0 then
    -- a new window starts with this hit (or a counter that somehow lost its TTL gets one back)
    left = tonumber(window)
    redis.call('PEXPIRE', counter, left)
    redis.call('HSET', index, endpoint, limit)
    -- the index lives as long as its longest-lived counter, and never without a TTL
    if redis.call('PTTL', index) < left then
      redis.call('PEXPIRE', index, left)
    end
  end
  return { n, left }
end

local calls = #KEYS / 2
local out = {}
for i = 1, calls do
  local ok, r = pcall(hit, KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i])
  if not ok and type(r) ~= 'table' then
    r = redis.error_reply(tostring(r))
  end
  if calls == 1 then
    return r
  end
  out[i] = r
end
return out
