-- Removes every counter of one IP, found through its index (never by pattern: `rate:::1:*`
-- would also match the IPv6 address ::1:2), and the index; returns how many counters existed.
-- KEYS[1] the IP's index; ARGV[1] prefix of the IP's counter keys (prefix .. 'rate:' .. ip .. ':')
-- A counter key is ARGV[1] .. endpoint with '/' as '_' (names/keys.rs `rate_key`).
local endpoints = redis.call('HKEYS', KEYS[1])
local n = 0
for _, e in ipairs(endpoints) do
  n = n + redis.call('DEL', ARGV[1] .. (string.gsub(e, '/', '_')))
end
redis.call('DEL', KEYS[1])
return n
