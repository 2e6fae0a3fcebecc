-- Atomic counter that refuses to touch a non-counter value.
-- KEYS[1]: the key. ARGV[1]: delta. ARGV[2]: TTL in ms for a key that does not exist yet
-- (0: no expiry). An existing counter keeps its TTL.
local current = redis.call('GET', KEYS[1])
if current == false then
  local value = redis.call('INCRBY', KEYS[1], ARGV[1])
  if tonumber(ARGV[2]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return value
end
if not string.match(current, '^%-?%d+$') then
  return redis.error_reply('CACHEPLUG_NOT_A_COUNTER')
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
