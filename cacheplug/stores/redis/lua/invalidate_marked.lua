-- Invalidate a cluster entry that may have replicas (KEYS[3] is its replica marker):
-- delete it and its lease, announce it; whether it existed and whether it is replicated.
local removed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[1], '!' .. KEYS[1])
return {removed, redis.call('EXISTS', KEYS[3])}
