-- Redis Cluster half of session_put.lua: the user's session set alone (its own slot).
-- KEYS[1] the user's session set; ARGV[1] token hash, ARGV[2] TTL in ms
-- The set lives at least as long as its newest session, and never without a TTL. (Pruning of
-- expired members is done by listUserSessions, which checks each session on its own slot.)
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
