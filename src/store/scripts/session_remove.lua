-- Removes one session and takes it out of its user's index.
-- KEYS[1] session key, KEYS[2] its revision key; ARGV[1] token hash, ARGV[2] prefix of
-- user-index keys, ARGV[3] revision TTL in ms. The revision is bumped even when the session
-- is gone: a load in flight must not write it back.
rev_bump(KEYS[2], ARGV[3])
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
local ok, data = pcall(cjson.decode, v)
if ok and type(data) == 'table' then
  local uid = data['user_id']
  if uid == nil or uid == cjson.null then uid = data['userId'] end
  if type(uid) == 'number' then uid = string.format('%d', uid) end
  if type(uid) == 'string' then
    local index = ARGV[2] .. uid
    zindex(index, now_ms())
    redis.call('ZREM', index, ARGV[1])
  end
end
return 1
