// Package keys is the Redis key layout of synckairos.
//
// Sessions are spread over a fixed number of partitions; every key of one
// partition carries the same hash tag, so that a write script touching a
// session key, its partition's deadline index and its partition's outbox stays
// in one Redis Cluster hash slot.
package keys

import (
	"hash/fnv"
	"strconv"

	"github.com/synckairos/synckairos/internal/slots"
)

// Layout names the keys and channels of one key prefix and partition count.
type Layout struct {
	prefix     string
	partitions int
}

// New returns the layout for prefix and partitions (at least 1).
func New(prefix string, partitions int) Layout {
	return Layout{prefix: prefix, partitions: partitions}
}

// Partition returns the partition of a session: a stable hash of its ID.
// It must never change for a deployed layout, or sessions would move.
func (l Layout) Partition(sessionID string) int {
	h := fnv.New32a()
	h.Write([]byte(sessionID))
	return int(h.Sum32() % uint32(l.partitions))
}

// Tag returns the hash tag of a partition, such as "{p07}": every key and
// sharded channel of the partition carries it, so all are in one hash slot.
func (l Layout) Tag(partition int) string {
	n := strconv.Itoa(partition)
	if len(n) < 2 {
		n = "0" + n
	}
	return "{p" + n + "}"
}

// Session returns the key holding a session's state and version.
func (l Layout) Session(sessionID string) string {
	return l.prefix + l.Tag(l.Partition(sessionID)) + ":s:" + sessionID
}

// Outbox returns the audit outbox stream of a partition.
func (l Layout) Outbox(partition int) string {
	return l.prefix + l.Tag(partition) + ":outbox"
}

// Deadlines returns the deadline index of a partition: a sorted set of
// session IDs scored by the server time (ms) at which each next expires.
func (l Layout) Deadlines(partition int) string {
	return l.prefix + l.Tag(partition) + ":deadlines"
}

// Lives returns the key holding the last life number given to a session
// created in a partition. It never expires.
func (l Layout) Lives(partition int) string {
	return l.prefix + l.Tag(partition) + ":lives"
}

// Slot returns the Redis Cluster hash slot of a partition's keys.
func (l Layout) Slot(partition int) int { return slots.Of(l.Tag(partition)) }

// Partitions returns the number of partitions.
func (l Layout) Partitions() int { return l.partitions }

// Updates returns the channel on which every committed change is published.
func (l Layout) Updates() string {
	return l.prefix + "session-updates"
}

// PartitionUpdates returns the sharded channel on which, on Redis Cluster,
// the changes of one partition's sessions are published: it shares the
// partition's hash slot, so the write script may SPUBLISH to it.
func (l Layout) PartitionUpdates(partition int) string {
	return l.prefix + l.Tag(partition) + ":updates"
}

// Broadcast returns the channel of one session's application broadcasts.
func (l Layout) Broadcast(sessionID string) string {
	return l.prefix + "ws:" + sessionID
}

// SessionBroadcast returns the sharded channel of one session's broadcasts
// on Redis Cluster, in the hash slot of the session's partition.
func (l Layout) SessionBroadcast(sessionID string) string {
	return l.prefix + l.Tag(l.Partition(sessionID)) + ":ws:" + sessionID
}
