-- After the sink: forget a key's pending value unless a later put replaced it.
-- KEYS[1]: the pending values (a hash). ARGV: key, entry id, key, entry id, ...
-- Returns the keys forgotten (the database now has their latest write).
local settled = {}
for i = 1, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and string.sub(held, 1, #ARGV[i + 1] + 1) == ARGV[i + 1] .. '|' then
    redis.call('HDEL', KEYS[1], ARGV[i])
    table.insert(settled, ARGV[i])
  end
end
return settled
