-- The general cache's del: for each key, bumps its revision (refusing every fill whose load
-- began before), then deletes it → how many keys existed.
-- KEYS: pairs (data key, its revision key); ARGV[1] the revision TTL in ms
local n = 0
for i = 1, #KEYS, 2 do
  rev_bump(KEYS[i + 1], ARGV[1])
  n = n + redis.call('DEL', KEYS[i])
end
return n
