-- Redis Cluster half of the session scripts: the user's session index alone (its own slot).
-- KEYS[1] the user's session index; ARGV[1] the operation:
--   'add' ARGV[2] token hash, ARGV[3] TTL in ms, ARGV[4] grace in ms: prunes members whose
--         session expired more than the grace ago (the session lives on another node, written
--         just after this), adds the hash scored with its expiry, raises the index's TTL
--   'rem' ARGV[2..] token hashes: removes them
--   'members': every member (for removeUserSessions)
--   'live' ARGV[2] grace in ms: prunes as 'add' does, then every member (for listing)
local now = now_ms()
zindex(KEYS[1], now)
local op = ARGV[1]
if op == 'add' then
  local ttl = tonumber(ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ms(now - tonumber(ARGV[4])))
  redis.call('ZADD', KEYS[1], ms(now + ttl), ARGV[2])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return 1
elseif op == 'rem' then
  local n = 0
  for i = 2, #ARGV do
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
  return n
elseif op == 'live' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ms(now - tonumber(ARGV[2])))
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
