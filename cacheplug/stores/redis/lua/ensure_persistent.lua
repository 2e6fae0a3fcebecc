-- A namespace version copy on a cluster: created once, kept for good; its value.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
