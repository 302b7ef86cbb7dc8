-- The general cache's miss read: the value, the revision seen and this server's time,
-- atomically. The revision key is created when absent ('0', as an absent one reads) and its
-- TTL renewed, so that a load in flight is discoverable by invalidatePattern's SCAN of
-- revision keys (src/store/revision.rs). With a lease key (wrap's `lock`), and no value, it
-- also tries to take the lease for the caller.
-- KEYS[1] the data key, KEYS[2] its revision key, KEYS[3] (optional) its lease key
-- ARGV[1] the revision TTL in ms, ARGV[2] the lease owner, ARGV[3] the lease TTL in ms
-- → { value or nil, revision, now ms, lease: '1' taken, '0' held by another, '' not asked
--   (or refused by Redis: the caller loads on its own) }
local v = redis.call('GET', KEYS[1])
local rev = redis.call('GET', KEYS[2])
if rev then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
else
  rev = '0'
  -- under maxmemory (OOM, noeviction) the read still answers; only the discovery is lost
  redis.pcall('SET', KEYS[2], '0', 'PX', ARGV[1])
end
local lease = ''
if KEYS[3] and not v then
  local r = redis.pcall('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3])
  if type(r) == 'table' and r.ok then
    lease = '1'
  elseif not r then
    lease = '0'
  end
end
return { v, rev, string.format('%d', rev_now()), lease }
