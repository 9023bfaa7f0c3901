-- The one place where a session change is committed. Atomically: check the
-- version, write the state with its TTL, publish the change, append it to
-- the partition's audit outbox, and keep the partition's deadline index.
--
-- The version lives in its own hash field, so the check never decodes the
-- state: a write costs the same with 2 or 1000 participants.
local key = KEYS[1]
local outbox = KEYS[2]       -- the partition's outbox stream (same hash slot)
local deadlines = KEYS[3]    -- the partition's deadline index (same hash slot)
local op = ARGV[1]           -- 'create', 'update', 'delete' or 'restore'
local expected = ARGV[2]     -- update: the version read; restore: the version to restore at
local state = ARGV[3]        -- create, update, restore: the state JSON, at the next version
local ttl_ms = ARGV[4]
local channel = ARGV[5]
local session_json = ARGV[6] -- the session ID as a JSON string
local event_type = ARGV[7]   -- the audit event type; empty: no outbox entry
local at_ms = ARGV[8]        -- server time of the change, in ms
local deadline_ms = ARGV[9]  -- when the session's clocks next run out; empty: none
local session_id = ARGV[10]
local publish = ARGV[11]     -- 'PUBLISH', or 'SPUBLISH' to a channel of the partition's slot

local OK, NOT_FOUND, CONFLICT, EXISTS, CORRUPT = 1, 0, 2, 3, 4

local next_version
if op == 'create' then
  if redis.call('EXISTS', key) == 1 then
    return {EXISTS}
  end
  next_version = '1'
else
  local current = redis.call('HGET', key, 'v')
  if op == 'restore' then
    -- Only over nothing, or over an older version.
    if current and (tonumber(current) or 0) >= tonumber(expected) then
      return {CONFLICT, current, redis.call('HGET', key, 's')}
    end
    if not current and redis.call('EXISTS', key) == 1 then
      return {CORRUPT}
    end
    next_version = expected
  else
    if not current then
      if redis.call('EXISTS', key) == 1 then
        return {CORRUPT}
      end
      return {NOT_FOUND}
    end
    if op == 'update' and current ~= expected then
      return {CONFLICT, current, redis.call('HGET', key, 's')}
    end
    local n = tonumber(current)
    if not n then
      return {CORRUPT}
    end
    next_version = string.format('%d', n + 1)
  end
end

local kind
if op == 'delete' then
  redis.call('DEL', key)
  kind = 'deleted'
else
  redis.call('HSET', key, 'v', next_version, 's', state)
  redis.call('PEXPIRE', key, ttl_ms)
  if op == 'create' then kind = 'created'
  elseif op == 'update' then kind = 'updated'
  else kind = 'restored' end
end

-- The message's format: 2 since the state carries its last transition.
local message = '{"format":2,"kind":"' .. kind .. '","session_id":' .. session_json ..
  ',"version":' .. next_version
if op ~= 'delete' then
  message = message .. ',"state":' .. state
end
redis.call(publish, channel, message .. '}')

if deadline_ms ~= '' and op ~= 'delete' then
  redis.call('ZADD', deadlines, deadline_ms, session_id)
else
  redis.call('ZREM', deadlines, session_id)
end

if event_type ~= '' then
  redis.call('XADD', outbox, '*', 'sid', session_json, 'v', next_version,
    'type', event_type, 'ts', at_ms, 'state', state)
end

return {OK, next_version}
