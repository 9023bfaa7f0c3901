package synckairos

import (
	"context"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/keys"
)

// SubscriberConnName returns the client name of the Manager's subscriber
// connection, for fault tests that kill it.
func SubscriberConnName(m *Manager) string { return m.hub.ConnName() }

// KeysOf returns the key layout a Manager resolved.
func KeysOf(m *Manager) keys.Layout { return m.layout }

// ResolveKeys resolves the key layout of prefix with the default
// configuration, as New would: for tests that look at keys before or
// without a Manager.
func ResolveKeys(ctx context.Context, client rueidis.Client, prefix string) (keys.Layout, error) {
	return resolveLayout(ctx, client, (&Config{KeyPrefix: prefix}).WithDefaults())
}

// DecodeKept reports what the Manager keeps of session id's last read:
// whether an entry, the version read, and whether its decoded state.
func DecodeKept(m *Manager, id string) (kept bool, version int64, decoded bool) {
	e := m.decodes.lookup(id)
	if e == nil {
		return false, 0, false
	}
	return true, e.version, e.state != nil
}
