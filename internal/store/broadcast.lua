-- Publishes a session's broadcast. The session key is named so that, on
-- Redis Cluster, every broadcast of a session leaves from the session's node
-- and its subscribers receive them in order. There the broadcast is also
-- published on the session's sharded channel, in the key's slot, for the
-- subscribers of that one session; the classic channel serves the pattern
-- subscribers, as sharded pub/sub has no patterns.
local channel = ARGV[1]
local payload = ARGV[2]
local sharded = ARGV[3] -- empty when not on a cluster
local n = redis.call('PUBLISH', channel, payload)
if sharded ~= '' then
  n = n + redis.call('SPUBLISH', sharded, payload)
end
return n
