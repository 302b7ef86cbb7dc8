-- Guard in front of cluster_session_index.lua 'add' for a loader's fill: refused (0) when the
-- user's sessions were revoked at or after the miss that started the load, less the clock
-- skew between nodes. KEYS[2] the index's revision key; ARGV[5] that time (ms, skew taken off)
if KEYS[2] then
  local user_rev = redis.call('GET', KEYS[2])
  if user_rev and tonumber(user_rev) >= tonumber(ARGV[5]) then return 0 end
end
