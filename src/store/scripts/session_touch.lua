-- Refreshes a session's TTL without rewriting it, and keeps its user's index naming it for at
-- least as long (a member scored below its session's new expiry would be pruned while the
-- session lives, and a user-wide revocation would miss it). Nothing is written when the
-- session is gone: a touch never brings back a revoked or expired session.
-- KEYS[1] session key, KEYS[2] (optional) the user's session index
-- ARGV[1] TTL in ms, ARGV[2] token hash → 1 if the session exists, 0 if not
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
if KEYS[2] then index_add(KEYS[2], ARGV[2], tonumber(ARGV[1])) end
return 1
