-- The live holders of a semaphore, in one read: {count, ms until the earliest expires or -1}.
-- KEYS[1] holders (sorted set, owner -> expiry in ms; expired holders are dropped by the
-- other semaphore scripts, so the set stays about as small as the permits).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count, first = 0, -1
for i = 2, #all, 2 do
  local expires = tonumber(all[i])
  if expires > now then
    if count == 0 then first = expires - now end
    count = count + 1
  end
end
return {count, first}
