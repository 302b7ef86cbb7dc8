-- The live sessions of a user; members whose session expired are pruned, never returned.
-- KEYS[1] the user's session index; ARGV[1] prefix of session keys
local now = now_ms()
zindex(KEYS[1], now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ms(now))
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = {}
for _, m in ipairs(members) do
  if redis.call('EXISTS', ARGV[1] .. m) == 1 then
    live[#live + 1] = m
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return live
