-- The live counters of one IP: { { endpoint, limit, hits, ms left }, ... }. Index entries
-- whose counter has expired or was reset are pruned.
-- KEYS[1] the IP's index; ARGV[1] prefix of the IP's counter keys (see rate_reset_ip.lua)
local flat = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #flat, 2 do
  local key = ARGV[1] .. (string.gsub(flat[i], '/', '_'))
  local hits = redis.call('GET', key)
  local left = redis.call('PTTL', key)
  if hits and left > 0 then
    out[#out + 1] = { flat[i], tonumber(flat[i + 1]) or 0, tonumber(hits) or 0, left }
  else
    redis.call('HDEL', KEYS[1], flat[i])
  end
end
return out
