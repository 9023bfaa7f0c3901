package synckairos

import (
	"hash/maphash"
	"sync"
)

// decodeShards divides a decodeCache among as many locks.
const decodeShards = 16

// decodedOverhead is what a decodeCache entry is counted for beyond the
// bytes of its strings: the entry and its map slot, and, once it holds a
// decoded state, the State block and its participants (whose strings are
// substrings of the stored form, not copies).
const (
	decodedOverhead      = 160
	decodedStateOverhead = 1024
)

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

func (c *decodeCache) shard(id string) *decodeShard {
	return &c.shards[maphash.String(c.seed, id)%decodeShards]
}

// lookup returns the entry of session id, or nil.
func (c *decodeCache) lookup(id string) *decoded {
	if c.budget == 0 {
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
	if c.budget == 0 {
		return
	}
	e.cost = decodedOverhead + len(id) + len(e.key) + len(e.stored)
	if e.state != nil {
		e.cost += decodedStateOverhead + len(e.state.Data)
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
	if c.budget == 0 {
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
