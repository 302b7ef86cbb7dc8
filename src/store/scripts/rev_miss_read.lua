-- The miss read: the value, the revision seen, and this server's time, atomically.
-- KEYS[1] the data key, KEYS[2] its revision key → { value or nil, revision or '0', now ms }
return { redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) or '0', string.format('%d', rev_now()) }
