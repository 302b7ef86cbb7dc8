-- Redis Cluster half of rate_hit.lua: the counter alone (its own slot), with the same
-- invariant (the counter never exists without its TTL). The index entry was written before
-- this, by cluster_rate_index.lua on the index's slot.
-- KEYS[1] the counter; ARGV[1] window in ms. Returns { hits in this window, ms left }.
local n = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  left = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], left)
end
return { n, left }
