-- Publishes a session's broadcast. The session key is named only so that, on
-- Redis Cluster, every broadcast of a session leaves from the session's node
-- and its subscribers receive them in order.
local channel = ARGV[1]
local payload = ARGV[2]
return redis.call('PUBLISH', channel, payload)
