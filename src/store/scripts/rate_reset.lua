-- Removes one counter and its entry in the IP's index; returns 1 if the counter existed.
-- KEYS[1] the counter, KEYS[2] the IP's index; ARGV[1] endpoint as given
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n
