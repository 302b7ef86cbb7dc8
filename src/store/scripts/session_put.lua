-- Stores a session and indexes it under its user, atomically: O(log n + m) for a user with n
-- sessions of whom m have expired.
-- KEYS[1] session key, KEYS[2] (optional) the user's session index
-- ARGV[1] session JSON, ARGV[2] TTL in ms, ARGV[3] token hash
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then
  local now = now_ms()
  zindex(KEYS[2], now)
  local ttl = tonumber(ARGV[2])
  -- members whose session has expired leave the index, so it never names dead sessions
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ms(now))
  redis.call('ZADD', KEYS[2], ms(now + ttl), ARGV[3])
  -- the index lives at least as long as its newest session, and never without a TTL
  if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return 1
