-- The live holders of a semaphore, in one read: {count, ms until the earliest expires or -1}.
-- KEYS[1] holders (sorted set, owner -> expiry in ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #live == 0 then return {0, -1} end
return {redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), tonumber(live[2]) - now}
