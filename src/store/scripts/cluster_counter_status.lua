-- One rate counter's hits and ms left, in one read (Redis Cluster getIpStatus).
-- KEYS[1] the counter. Returns { hits or false, PTTL }.
return { redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]) }
