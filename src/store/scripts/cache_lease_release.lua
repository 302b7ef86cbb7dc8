-- Releases a wrap lease if the caller still holds it (a load that wrote nothing: the loader
-- failed, or its value could not be cached) → 1 if released.
-- KEYS[1] the lease key; ARGV[1] the owner
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
