-- Write an entry if every condition holds, atomically; then drop its lease and announce it.
-- KEYS[1]: data key. KEYS[2]: its lease key (same hash slot). KEYS[3..]: version keys of the
-- entry's tags and namespaces.
-- ARGV[1]: lease token, or '' to write without holding the lease (set/add).
-- ARGV[2]: value. ARGV[3]: TTL in ms (0: none). ARGV[4]: announce channel.
-- ARGV[5]: '1' to write only if the data key is absent.
-- Then per version key: the version the entry records, and '1' if the key must be absent
-- (the writer picked a fresh version for it) or '0' if it must hold exactly that version.
-- Returns 1 when written, 0 when a condition failed (nothing changed).
local token = ARGV[1]
if token ~= '' and redis.call('GET', KEYS[2]) ~= token then
  return 0
end
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 3, #KEYS do
  local j = 6 + (i - 3) * 2
  local current = redis.call('GET', KEYS[i])
  local holds
  if ARGV[j + 1] == '1' then
    holds = not current
  else
    holds = current == ARGV[j]
  end
  if not holds then
    -- An invalidation came after the writer read the versions: store nothing, and let a
    -- lease holder's waiters go at once rather than at the lease's expiry.
    if token ~= '' then
      redis.call('DEL', KEYS[2])
      redis.call('PUBLISH', ARGV[4], KEYS[1])
    end
    return 0
  end
end
local ttl = ARGV[3]
if ttl ~= '0' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
-- A version key lives at least as long as the entries that record it.
for i = 3, #KEYS do
  local j = 6 + (i - 3) * 2
  if ARGV[j + 1] == '1' then
    if ttl ~= '0' then
      redis.call('SET', KEYS[i], ARGV[j], 'PX', ttl)
    else
      redis.call('SET', KEYS[i], ARGV[j])
    end
  elseif ttl ~= '0' then
    redis.call('PEXPIRE', KEYS[i], ttl, 'GT')
  else
    redis.call('PERSIST', KEYS[i])
  end
end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[4], KEYS[1])
return 1
