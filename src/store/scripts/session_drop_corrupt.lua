-- Deletes a cached value that could not be used (not a session / not a permissions snapshot,
-- or an expiry that cannot be served), only while the key still holds exactly that value: a
-- fill that replaced it in the meantime stays.
-- KEYS[1] the key; ARGV[1] the value that was read
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
