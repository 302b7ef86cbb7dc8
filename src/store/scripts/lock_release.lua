-- Compare-and-delete: only the owner that holds the lock releases it.
-- KEYS[1] lock key; ARGV[1] owner token. Returns 1 if it was released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
