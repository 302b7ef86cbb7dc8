-- A revocation: bumps the key's revision (refusing every fill whose load began before), then
-- deletes the key → the value it held, or nil.
-- KEYS[1] the data key, KEYS[2] (optional: absent when it is not in KEYS[1]'s slot on a
-- Cluster; then it is bumped by a call of its own) its revision key; ARGV[1] revision TTL ms
if KEYS[2] then rev_bump(KEYS[2], ARGV[1]) end
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
return v
