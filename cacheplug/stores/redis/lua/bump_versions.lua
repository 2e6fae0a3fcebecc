-- Invalidate tags or namespaces: give each version key a new version, so that every entry
-- recording an older one reads as a miss and no load that read the old one can store.
-- KEYS: version keys. ARGV[1]: announce channel. ARGV[2]: ms to keep a version key created
-- here. ARGV[3..]: per key, a fresh random version for a key that is absent (or garbled):
-- never recreating an old version is what makes an evicted version key safe.
for i = 1, #KEYS do
  local bumped = redis.pcall('INCR', KEYS[i])
  if type(bumped) == 'table' and bumped.err then
    redis.call('SET', KEYS[i], ARGV[i + 2], 'PX', ARGV[2])
  elseif bumped == 1 then
    -- INCR created the key: it was absent, so start from the fresh version instead.
    redis.call('SET', KEYS[i], ARGV[i + 2], 'PX', ARGV[2])
  end
  redis.call('PUBLISH', ARGV[1], '!' .. KEYS[i])
end
return #KEYS
