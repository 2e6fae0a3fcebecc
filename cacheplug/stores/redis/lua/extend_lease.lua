-- Extend a lease the caller still holds. KEYS[1]: lease key. ARGV[1]: token. ARGV[2]: ms.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
