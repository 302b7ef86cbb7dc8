-- A loader's fill, written only if nothing revoked the key since the miss that started the
-- load → 1 if written, 0 if refused.
-- KEYS[1] the data key, KEYS[2] its revision key
-- ARGV[1] value, ARGV[2] TTL in ms, ARGV[3] revision seen, ARGV[4] time of the miss (ms),
-- ARGV[5] the oldest load that may still write (ms)
if not rev_unchanged(KEYS[2], ARGV[3], ARGV[4], ARGV[5]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
