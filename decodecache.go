package synckairos

import (
	"hash/maphash"
	"strings"
	"sync"
	"unsafe"
)

// decodeShards divides a decodeCache among as many locks.
const decodeShards = 16

// decodedOverhead is what a decodeCache entry is counted for beyond its
// strings: the entry and its map slot.
const decodedOverhead = 160

// decodeCache keeps, per session, the stored form that GetSession last
// read and, once it has been read twice, the state decoded from it, so
// that a read finding the very same stored form in Redis copies that state
// (State.Clone) rather than decoding it again. Every read still asks Redis,
// and a kept state stands only for the bytes it was decoded from: it is
// never stale. A stored form read once (as by a read, modify and write
// cycle) costs one small entry and no copy. Memory is bounded
// (Config.DecodeCacheBytes, shared by the shards): a shard over its share
// drops entries of its own, which its map's iteration order picks at
// random.
type decodeCache struct {
	seed   maphash.Seed
	budget int // bytes per shard; 0: keeps nothing
	shards [decodeShards]decodeShard
}

type decodeShard struct {
	mu      sync.Mutex
	entries map[string]*decoded
	bytes   int
}

// decoded is one session's entry. It is not changed once kept: an entry is
// replaced, never updated.
type decoded struct {
	key     string // the session's key, as the read asked for it
	version int64
	stored  string
	state   *State // decoded from stored, or nil; never handed out, only copies of it
	cost    int
}

func newDecodeCache(budget int) *decodeCache {
	c := &decodeCache{seed: maphash.MakeSeed(), budget: max(budget, 0) / decodeShards}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]*decoded)
	}
	return c
}

// on reports whether the cache keeps anything (Config.DecodeCacheBytes).
func (c *decodeCache) on() bool { return c.budget > 0 }

func (c *decodeCache) shard(id string) *decodeShard {
	return &c.shards[maphash.String(c.seed, id)%decodeShards]
}

// lookup returns the entry of session id, or nil.
func (c *decodeCache) lookup(id string) *decoded {
	if !c.on() {
		return nil
	}
	sh := c.shard(id)
	sh.mu.Lock()
	e := sh.entries[id]
	sh.mu.Unlock()
	return e
}

// keep makes e the entry of session id, dropping others of its shard if it
// would not fit.
func (c *decodeCache) keep(id string, e *decoded) {
	if !c.on() {
		return
	}
	e.cost = decodedOverhead + len(e.key) + len(e.stored)
	if e.state != nil {
		e.cost += decodedSize(e.state, len(e.stored))
	}
	// The map's key: the end of the session's key, or a copy (the caller's
	// id may be a slice of something larger, which the map would keep).
	if strings.HasSuffix(e.key, id) {
		id = e.key[len(e.key)-len(id):]
	} else {
		id = strings.Clone(id)
	}
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.entries[id]; old != nil {
		delete(sh.entries, id)
		sh.bytes -= old.cost
	}
	if e.cost > c.budget {
		return
	}
	for k, old := range sh.entries {
		if sh.bytes+e.cost <= c.budget {
			break
		}
		delete(sh.entries, k)
		sh.bytes -= old.cost
	}
	sh.entries[id] = e
	sh.bytes += e.cost
}

// forget drops the entry of session id.
func (c *decodeCache) forget(id string) {
	if !c.on() {
		return
	}
	sh := c.shard(id)
	sh.mu.Lock()
	if old := sh.entries[id]; old != nil {
		delete(sh.entries, id)
		sh.bytes -= old.cost
	}
	sh.mu.Unlock()
}

// reset drops every entry.
func (c *decodeCache) reset() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.entries)
		sh.bytes = 0
		sh.mu.Unlock()
	}
}

// decodedSize is about what s, decoded from a stored form of the given
// length, holds beyond that form: its block and slices, its maps, and its
// strings when they are copies (a form over substringMax) rather than
// substrings of the form.
func decodedSize(s *State, stored int) int {
	n := int(unsafe.Sizeof(stateBlock{})) + len(s.Data)
	if len(s.Participants) > len(stateBlock{}.participants) {
		n += cap(s.Participants) * int(unsafe.Sizeof(Participant{}))
	}
	for i := range s.Participants {
		if s.Participants[i].Control != nil {
			n += int(unsafe.Sizeof(ParticipantControl{}))
		}
	}
	n += len(s.Groups)*int(unsafe.Sizeof(Group{})) + len(s.Stages)*int(unsafe.Sizeof(Stage{}))
	for k, v := range s.Metadata {
		n += 64 + len(k) + len(v) // a map slot and its strings (copies or not: counted)
	}
	if stored > substringMax {
		n += stored // strings copied
	}
	return n
}
