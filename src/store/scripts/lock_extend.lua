-- Compare-and-pexpire: only the owner that holds the lock extends it.
-- KEYS[1] lock key; ARGV[1] owner token, ARGV[2] new TTL in ms. Returns 1 if extended, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
