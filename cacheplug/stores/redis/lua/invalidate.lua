-- Remove entries together with their leases, and announce each key, so that a load that
-- started before can no longer store its (old) result and waiters re-check at once.
-- The announcement starts with '!': an invalidation, not a fill.
-- KEYS: data key 1, lease key 1, data key 2, lease key 2, ... ARGV[1]: announce channel.
-- Returns how many data keys existed.
local removed = 0
for i = 1, #KEYS, 2 do
  removed = removed + redis.call('DEL', KEYS[i])
  redis.call('DEL', KEYS[i + 1])
  redis.call('PUBLISH', ARGV[1], '!' .. KEYS[i])
end
return removed
