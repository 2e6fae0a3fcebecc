-- Drop a lease if the caller still holds it, and announce the key so waiters re-check.
-- KEYS[1]: data key. KEYS[2]: lease key. ARGV[1]: token. ARGV[2]: announce channel.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], KEYS[1])
return 1
