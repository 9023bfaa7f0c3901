package synckairos

// SubscriberConnID returns the Redis client ID of the Manager's subscriber
// connection, for fault tests that kill it.
func SubscriberConnID(m *Manager) int64 { return m.hub.ConnID() }
