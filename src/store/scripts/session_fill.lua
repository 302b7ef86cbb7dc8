-- A loader's session fill (session_put.lua, guarded), atomically → 1 if written, 0 if refused:
-- refused when the session was revoked since the miss that started the load, or its user's
-- sessions were (the index's revision is at or after the time of that miss).
-- KEYS[1] session key, KEYS[2] its revision key, KEYS[3] (optional) the user's session index,
-- KEYS[4] (with KEYS[3]) the index's revision key
-- ARGV[1] session JSON, ARGV[2] TTL in ms, ARGV[3] token hash, ARGV[4] revision seen,
-- ARGV[5] time of the miss (ms), ARGV[6] the oldest load that may still write (ms)
if not rev_unchanged(KEYS[2], ARGV[4], ARGV[5], ARGV[6]) then return 0 end
if KEYS[3] then
  local user_rev = redis.call('GET', KEYS[4])
  if user_rev and tonumber(user_rev) >= tonumber(ARGV[5]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[3] then index_add(KEYS[3], ARGV[3], tonumber(ARGV[2])) end
return 1
