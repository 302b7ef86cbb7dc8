-- Redis Cluster half of rate_hit.lua: the IP's index alone (its own slot). Records the
-- endpoint (as given) with its limit and keeps the index alive at least one window, so it
-- outlives every counter it names.
-- KEYS[1] the IP's index; ARGV[1] endpoint as given, ARGV[2] its limit, ARGV[3] window in ms
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
