-- Replace the value only if it is exactly the expected one, keeping the TTL.
-- KEYS[1]: the key. ARGV[1]: expected bytes. ARGV[2]: new bytes. Returns 1 if replaced.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
