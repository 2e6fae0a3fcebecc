-- Make sure version keys exist before a writer reads the data it will cache: an absent key
-- gets the caller's fresh random version (kept ARGV[1] ms; a write recording it extends that).
-- KEYS: version keys. ARGV[1]: ms to keep a created key. ARGV[2..]: a fresh version per key.
-- Returns the version each key holds now (the caller's, or the one somebody set first).
local found = {}
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'NX', 'PX', ARGV[1])
  found[i] = redis.call('GET', KEYS[i])
end
return found
