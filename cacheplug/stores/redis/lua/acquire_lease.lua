-- Take a lease if free. KEYS[1]: lease key. ARGV[1]: token. ARGV[2]: TTL in ms.
-- Returns 0 when taken, else the ms (>= 1) until the current lease expires.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local remaining = redis.call('PTTL', KEYS[1])
if remaining < 1 then
  return 1
end
return remaining
