-- Stores a session and indexes it under its user, atomically.
-- KEYS[1] session key, KEYS[2] (optional) the user's session set
-- ARGV[1] session JSON, ARGV[2] TTL in ms, ARGV[3] token hash, ARGV[4] prefix of session keys
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then
  -- prune members whose session has expired, so the set never names dead sessions
  local members = redis.call('SMEMBERS', KEYS[2])
  for _, m in ipairs(members) do
    if m ~= ARGV[3] and redis.call('EXISTS', ARGV[4] .. m) == 0 then
      redis.call('SREM', KEYS[2], m)
    end
  end
  redis.call('SADD', KEYS[2], ARGV[3])
  -- the set lives at least as long as its newest session, and never without a TTL
  local ttl = tonumber(ARGV[2])
  local left = redis.call('PTTL', KEYS[2])
  if left < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return 1
