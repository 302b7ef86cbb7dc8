-- Bumps one revision key. KEYS[1] the revision key; ARGV[1] its TTL in ms → the new revision
local new = rev_bump(KEYS[1], ARGV[1])
if not new then return redis.error_reply('OOM the revision could not be written') end
return string.format('%d', new)
