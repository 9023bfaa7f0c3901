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
	"sync"

	"github.com/synckairos/synckairos/internal/slots"
)

// Layout names the keys and channels of one key prefix and partition count.
type Layout struct {
	prefix     string
	partitions int
	tags       []string // the spread layout's hash tags; nil: "{pNN}"
}

// New returns the layout for prefix and partitions (at least 1) whose hash
// tags are "{p00}", "{p01}", …, the same for every prefix.
func New(prefix string, partitions int) Layout {
	return Layout{prefix: prefix, partitions: partitions}
}

// NewSpread returns the layout for prefix and partitions whose hash tags put
// the partitions on slots spread evenly over the slot space, at an offset
// of the prefix's own: a cluster whose masters serve equal ranges of slots
// serves equal numbers of partitions on each (±1), and two prefixes share
// no slot unless their offsets happen to coincide.
func NewSpread(prefix string, partitions int) Layout {
	l := Layout{prefix: prefix, partitions: partitions, tags: make([]string, partitions)}
	base := slots.Of(prefix) // a prefix has no braces: the whole of it
	table := slotTags()
	for p := range l.tags {
		slot := (base + (2*p+1)*16384/(2*partitions)) % 16384
		l.tags[p] = "{" + table[slot] + "}"
	}
	return l
}

// slotTags returns, for every slot, a short string whose hash is that slot:
// the first of "s0", "s1", … "sz", "s10", … to hash there.
var slotTags = sync.OnceValue(func() *[16384]string {
	var t [16384]string
	for n, left := uint64(0), 16384; left > 0; n++ {
		s := "s" + strconv.FormatUint(n, 36)
		if slot := slots.Of(s); t[slot] == "" {
			t[slot] = s
			left--
		}
	}
	return &t
})

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
	if l.tags != nil {
		return l.tags[partition]
	}
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

// Finished returns the stream of a partition's finished sessions, which
// the finish handlers read through a consumer group.
func (l Layout) Finished(partition int) string {
	return l.prefix + l.Tag(partition) + ":finished"
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
