-- Store a loaded value only while the loader still holds the lease; then drop the lease and
-- announce the key. KEYS[1]: data key. KEYS[2]: lease key (same hash slot).
-- ARGV[1]: token. ARGV[2]: value. ARGV[3]: TTL in ms (0: none). ARGV[4]: announce channel.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[4], KEYS[1])
return 1
