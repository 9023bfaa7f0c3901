// Package slots tells which Redis Cluster master serves which hash slot, as
// the cluster says now: a client's own map lags behind a failover or a
// resharding until it learns of it.
package slots

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Spans are the slot ranges of a cluster's masters.
type Spans []Span

// Span is a range of slots, from and to included, and its master.
type Span struct {
	From, To int
	Node     string // host:port
}

// Owner returns the master serving slot, or "" when none does.
func (sp Spans) Owner(slot int) string {
	for _, r := range sp {
		if slot >= r.From && slot <= r.To {
			return r.Node
		}
	}
	return ""
}

// nodeTimeout bounds the answer of one node to Get: a node that hangs
// leaves the time to the others.
const nodeTimeout = 250 * time.Millisecond

// Get asks the cluster which master serves which slots: CLUSTER SLOTS, of
// the nodes the client knows, one after the other until one answers (a
// node may be down, or hang: each has nodeTimeout).
func Get(ctx context.Context, client rueidis.Client) (Spans, error) {
	err := errors.New("CLUSTER SLOTS: no node known")
	for _, node := range client.Nodes() {
		var sp Spans
		nctx, cancel := context.WithTimeout(ctx, nodeTimeout)
		sp, err = get(nctx, node)
		cancel()
		if err == nil || ctx.Err() != nil {
			return sp, err
		}
	}
	return nil, err
}

func get(ctx context.Context, client rueidis.Client) (Spans, error) {
	ranges, err := client.Do(ctx, client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, err
	}
	var out Spans
	for _, r := range ranges {
		f, err := r.ToArray()
		if err != nil || len(f) < 3 {
			return nil, fmt.Errorf("CLUSTER SLOTS: unexpected reply: %v", err)
		}
		from, err1 := f[0].AsInt64()
		to, err2 := f[1].AsInt64()
		master, err3 := f[2].ToArray()
		if err1 != nil || err2 != nil || err3 != nil || len(master) < 2 {
			return nil, errors.New("CLUSTER SLOTS: unexpected reply")
		}
		host, _ := master[0].ToString()
		port, _ := master[1].AsInt64()
		out = append(out, Span{int(from), int(to), host + ":" + strconv.FormatInt(port, 10)})
	}
	return out, nil
}

// Of returns the hash slot of key: the CRC-16 of its hash tag (the first
// {…} with something in it), or of the whole key, modulo 16384.
func Of(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

// crc16 is CRC-16/XMODEM, the hash of Redis Cluster's key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
