-- Bumps one revision key. KEYS[1] the revision key; ARGV[1] its TTL in ms → the new revision
return string.format('%d', rev_bump(KEYS[1], ARGV[1]))
