-- The live sessions of a user; members whose session expired are pruned, never returned.
-- KEYS[1] the user's session set; ARGV[1] prefix of session keys
local members = redis.call('SMEMBERS', KEYS[1])
local live = {}
for _, m in ipairs(members) do
  if redis.call('EXISTS', ARGV[1] .. m) == 1 then
    live[#live + 1] = m
  else
    redis.call('SREM', KEYS[1], m)
  end
end
return live
