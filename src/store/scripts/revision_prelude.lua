-- Prelude of the scripts that read or bump a revision key (put in front of each of them).
-- A revision key (names/keys.rs rev_key) holds this server's time in ms of the last revocation of
-- its data key, kept strictly increasing; a loader fill is written only while it still holds
-- what the miss that started the load saw (see src/store/revision.rs).
local function rev_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- new = max(old + 1, now), with a TTL of ttl ms (longer than any data TTL of the families).
-- Under maxmemory (OOM, noeviction) the SET is refused: the revocation's DEL must still run
-- (it frees memory), so the error is caught → nil. A fill cannot write either while it lasts.
local function rev_bump(key, ttl)
  local old = tonumber(redis.call('GET', key) or '0') or 0
  local new = math.max(old + 1, rev_now())
  local r = redis.pcall('SET', key, string.format('%d', new), 'PX', ttl)
  if type(r) == 'table' and r.err then return nil end
  return new
end

-- True while a fill that saw revision `seen` at time `t` (ms, this server's clock) may still
-- write: nothing revoked the key since, and the load is younger than `max_age` ms (the
-- revision key outlives any such load, so a revocation cannot have expired away).
local function rev_unchanged(rev_key, seen, t, max_age)
  if (redis.call('GET', rev_key) or '0') ~= seen then return false end
  return rev_now() - tonumber(t) < tonumber(max_age)
end

