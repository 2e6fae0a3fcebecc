-- Take an entry back out if it still holds the value this writer stored (cluster writes
-- whose version check and write are two steps).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
