-- Append a write-behind entry unless the stream is full; remember it as the key's pending
-- value. KEYS[1]: the stream. KEYS[2]: the pending values (a hash).
-- ARGV[1]: max length. ARGV[2]: key. ARGV[3]: record. Returns the entry id, or false.
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[1], '*', 'k', ARGV[2], 'v', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], id .. '|' .. ARGV[3])
return id
