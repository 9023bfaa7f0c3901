-- The one place where a session change is committed. Atomically: check the
-- version (and the life), write the state with its TTL, publish the change,
-- append it to the partition's audit outbox, and keep the partition's
-- deadline index.
--
-- The version and the life live in their own hash fields, so the check never
-- decodes the state: a write costs the same with 2 or 1000 participants.
local key = KEYS[1]
local outbox = KEYS[2]       -- the partition's outbox stream (same hash slot)
local deadlines = KEYS[3]    -- the partition's deadline index (same hash slot)
local lives = KEYS[4]        -- the partition's last life number (same hash slot)
local op = ARGV[1]           -- 'create', 'update', 'update3', 'delete' or 'restore'
-- 'update3': an update whose state, stored in format 3, is its own message.
local flat = op == 'update3'
if flat then op = 'update' end
local expected = ARGV[2]     -- update: the version read; restore: the version to restore at
local state = ARGV[3]        -- create, update, restore: the state JSON, at the next version
local ttl_ms = ARGV[4]
local channel = ARGV[5]
local session_json = ARGV[6] -- the session ID as a JSON string
local deadline_ms = ARGV[7]  -- when the session's clocks next run out; empty: none
local session_id = ARGV[8]
local publish = ARGV[9]      -- 'PUBLISH', or 'SPUBLISH' to a channel of the partition's slot
local life = ARGV[10]        -- update, restore: the state's life; create: the byte
                             -- offset of the life's placeholder digit in the state
local status = ARGV[11]      -- the status of the state written
-- Only when the change has an outbox entry (each argument costs the call):
local event_type = ARGV[12] or '' -- the audit event type; none: no outbox entry
local at_ms = ARGV[13]       -- server time of the change, in ms
-- The partition's finish stream (same hash slot), given when finishes are
-- queued: a change that finishes the session appends to it.
local finished = KEYS[5]
local queue_finish = finished ~= nil

-- A final status (no table: a script's locals are made at every call).
local function final(st)
  return st == 'expired' or st == 'completed' or st == 'cancelled'
end

local OK, NOT_FOUND, CONFLICT, EXISTS, CORRUPT = 1, 0, 2, 3, 4

local next_version
local stored_status -- update, delete, restore: the status stored ('st'), if any
if op == 'create' then
  if redis.call('EXISTS', key) == 1 then
    return {EXISTS}
  end
  next_version = '1'
  -- A new life of the ID: the server time in microseconds, and more than any
  -- life given in the partition before, so that lives are unique per ID and
  -- a later life has a larger number, even after Redis lost its data.
  local t = redis.call('TIME')
  local n = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', lives) or '0') or 0
  if n <= last then n = last + 1 end
  local offset = tonumber(life)
  life = string.format('%d', n)
  redis.call('SET', lives, life)
  state = string.sub(state, 1, offset - 1) .. life .. string.sub(state, offset + 1)
else
  -- The version, the life and the status in one read.
  local stored = redis.call('HMGET', key, 'v', 'l', 'st')
  local current = stored[1]
  stored_status = stored[3]
  if op == 'restore' then
    -- Only over nothing, or over an older version of the same life.
    if current and ((tonumber(current) or 0) >= tonumber(expected) or (stored[2] or '0') ~= life) then
      return {CONFLICT, current, redis.call('HGET', key, 's')}
    end
    if not current and redis.call('EXISTS', key) == 1 then
      return {CORRUPT}
    end
    next_version = expected
    if tonumber(life) > (tonumber(redis.call('GET', lives) or '0') or 0) then
      redis.call('SET', lives, life)
    end
  else
    if not current then
      if redis.call('EXISTS', key) == 1 then
        return {CORRUPT}
      end
      return {NOT_FOUND}
    end
    local stored_life = stored[2] or '0'
    if op == 'update' and (current ~= expected or stored_life ~= life) then
      -- Another version, or another life of the ID at the same version.
      return {CONFLICT, current, redis.call('HGET', key, 's')}
    end
    local n = tonumber(current)
    if not n then
      return {CORRUPT}
    end
    next_version = string.format('%d', n + 1)
    life = stored_life
  end
end

-- A session that finishes: an update from a status not final to a final
-- one. The status before is the hash's field 'st'; a session last written
-- before that field was kept has its state decoded instead.
-- A restore of a finished session queues its finish again: the first may
-- have been lost with the data the restore makes up for.
local finishes = false
if queue_finish and op == 'update' and final(status) then
  local before = stored_status
  if not before then
    local ok, old = pcall(cjson.decode, redis.call('HGET', key, 's') or '')
    before = ok and type(old) == 'table' and old.status or ''
  end
  finishes = not final(before)
elseif queue_finish and op == 'restore' and final(status) then
  finishes = true
end

local kind
if op == 'delete' then
  redis.call('DEL', key)
  kind = 'deleted'
else
  redis.call('HSET', key, 'v', next_version, 's', state, 'l', life, 'st', status)
  redis.call('PEXPIRE', key, ttl_ms)
  if op == 'create' then kind = 'created'
  elseif op == 'update' then kind = 'updated'
  else kind = 'restored' end
end

-- The message (docs/WIRE.md): format 2, an envelope around the state, built
-- in one concatenation (Redis's Lua hashes every byte of every string it
-- makes, and the state is most of the bytes); or, for an update stored in
-- format 3, the state itself.
local message
if flat then
  -- Format 3: the update's message is the state stored, with no second
  -- string made of its bytes.
  message = state
elseif op ~= 'delete' then
  message = '{"format":2,"kind":"' .. kind .. '","session_id":' .. session_json ..
    ',"life":' .. life .. ',"version":' .. next_version .. ',"state":' .. state .. '}'
else
  message = '{"format":2,"kind":"deleted","session_id":' .. session_json ..
    ',"life":' .. life .. ',"version":' .. next_version .. '}'
end
redis.call(publish, channel, message)

if deadline_ms ~= '' and op ~= 'delete' then
  redis.call('ZADD', deadlines, deadline_ms, session_id)
else
  redis.call('ZREM', deadlines, session_id)
end

if event_type ~= '' then
  redis.call('XADD', outbox, '*', 'sid', session_json, 'life', life, 'v', next_version,
    'type', event_type, 'ts', at_ms, 'state', state)
end

if finishes then
  redis.call('XADD', finished, '*', 'sid', session_json, 'life', life, 'v', next_version, 'state', state)
end

return {OK, next_version, life}
