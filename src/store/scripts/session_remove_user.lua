-- Removes every session of a user and the user's set; returns how many sessions existed.
-- KEYS[1] the user's session set; ARGV[1] prefix of session keys
local members = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, m in ipairs(members) do
  n = n + redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
return n
