-- The holder of a lock and its PTTL in one read; an empty reply when it is free.
-- KEYS[1] lock key.
local owner = redis.call('GET', KEYS[1])
if not owner then return {} end
return {owner, redis.call('PTTL', KEYS[1])}
