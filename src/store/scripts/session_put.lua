-- Stores a session and indexes it under its user, atomically: O(log n + m) for a user with n
-- sessions of whom m have expired.
-- KEYS[1] session key, KEYS[2] (optional) the user's session index
-- ARGV[1] session JSON, ARGV[2] TTL in ms, ARGV[3] token hash
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then index_add(KEYS[2], ARGV[3], tonumber(ARGV[2])) end
return 1
