-- wrap's fill: written only if nothing revoked the key since the miss read that started the
-- load; the caller's lease (wrap's `lock`) is released in the same step, so a node waiting
-- for it finds the value as soon as the lease is gone → 1 if written, 0 if refused.
-- KEYS[1] the data key, KEYS[2] its revision key, KEYS[3] (optional) its lease key
-- ARGV[1] value, ARGV[2] TTL in ms, ARGV[3] revision seen, ARGV[4] time of the miss (ms),
-- ARGV[5] the oldest load that may still write (ms), ARGV[6] the lease owner
local ok = rev_unchanged(KEYS[2], ARGV[3], ARGV[4], ARGV[5])
if ok then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[6] then redis.call('DEL', KEYS[3]) end
if ok then return 1 end
return 0
