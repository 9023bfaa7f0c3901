package synckairos

import (
	"fmt"
	"strings"
	"testing"
)

func TestDecodeCacheBound(t *testing.T) {
	t.Parallel()
	stored := strings.Repeat("x", 1000)
	state := &State{SessionID: "s"}
	c := newDecodeCache(decodeShards * 8 << 10) // 8 KiB a shard
	for i := range 2000 {
		id := fmt.Sprint("s", i)
		c.keep(id, &decoded{key: "k:" + id, version: 1, stored: stored, state: state})
		if e := c.lookup(id); e == nil || e.stored != stored {
			t.Fatalf("entry %s not kept as given: %+v", id, e)
		}
	}
	entries := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sum := 0
		for _, e := range sh.entries {
			sum += e.cost
		}
		if sum != sh.bytes || sh.bytes > c.budget {
			t.Errorf("shard %d: %d bytes counted, %d in its entries, budget %d", i, sh.bytes, sum, c.budget)
		}
		entries += len(sh.entries)
	}
	// Every shard got more than it holds: each is as full as it can be.
	cost := c.lookup("s1999").cost
	if per := c.budget / cost; per < 2 || entries != decodeShards*per {
		t.Errorf("%d entries kept in all, want %d a shard (%d bytes each, %d a shard)", entries, per, cost, c.budget)
	}

	// Replacing an entry counts it once; forgetting it uncounts it.
	c.keep("s1999", &decoded{key: "k:s1999", version: 2, stored: "y"})
	if e := c.lookup("s1999"); e == nil || e.version != 2 {
		t.Fatalf("replaced entry: %+v", e)
	}
	sh := c.shard("s1999")
	before := sh.bytes
	c.forget("s1999")
	if c.lookup("s1999") != nil || sh.bytes != before-(decodedOverhead+len("k:s1999")+1) {
		t.Errorf("forget: entry %+v, shard bytes %d → %d", c.lookup("s1999"), before, sh.bytes)
	}

	// An entry larger than a shard's share is not kept, and drops the old one.
	c.keep("big", &decoded{key: "k:big", stored: "a"})
	c.keep("big", &decoded{key: "k:big", stored: strings.Repeat("x", 9<<10)})
	if e := c.lookup("big"); e != nil {
		t.Errorf("an entry over the budget was kept: %d bytes", e.cost)
	}

	// Off: nothing kept.
	off := newDecodeCache(-1)
	off.keep("s", &decoded{stored: "x"})
	if off.lookup("s") != nil {
		t.Error("a cache of budget -1 kept an entry")
	}
}
