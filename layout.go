package synckairos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos/internal/keys"
	"github.com/synckairos/synckairos/internal/slots"
)

// layoutResolveTimeout bounds New's resolution of LayoutDefault: reading the
// prefix's layout record and, for a prefix that has none, looking for the
// keys of the tags layout.
const layoutResolveTimeout = 30 * time.Second

// layoutScanCount is the COUNT of each SCAN looking for stored sessions.
const layoutScanCount = 4096

// String returns the layout's name, as its layout record stores it.
func (l KeyLayout) String() string {
	switch l {
	case LayoutDefault:
		return "default"
	case LayoutTags:
		return "tags"
	case LayoutSpread:
		return "spread"
	}
	return "KeyLayout(" + strconv.Itoa(int(l)) + ")"
}

// layoutRecord is the key holding the layout of a prefix's partitions, such
// as "spread 16": which layout, over how many partitions. The first Manager
// of a prefix writes it; every later one follows it.
func layoutRecord(prefix string) string { return prefix + "layout" }

// resolveLayout returns the key layout of cfg's prefix: the one its layout
// record names; else, for LayoutDefault, LayoutTags when the prefix holds
// keys of that layout (a deployment made before layouts could be chosen)
// and LayoutSpread when it holds none, which it records. A record that
// contradicts cfg (another layout chosen explicitly, other Partitions) is
// an error: following cfg would hide every stored session.
func resolveLayout(ctx context.Context, client rueidis.Client, cfg *Config) (keys.Layout, error) {
	record := layoutRecord(cfg.KeyPrefix)
	for attempt := 0; ; attempt++ {
		kind, partitions, found, err := readLayout(ctx, client, record, cfg.CallTimeout)
		if err != nil {
			return keys.Layout{}, err
		}
		if found {
			switch {
			case cfg.Layout != LayoutDefault && cfg.Layout != kind:
				return keys.Layout{}, fmt.Errorf("synckairos: Config.Layout %v, but the sessions of prefix %q are stored in the %v layout (key %s): use that one", cfg.Layout, cfg.KeyPrefix, kind, record)
			case partitions != cfg.Partitions:
				return keys.Layout{}, fmt.Errorf("synckairos: Config.Partitions %d, but the sessions of prefix %q are stored over %d partitions (key %s): changing it would hide them", cfg.Partitions, cfg.KeyPrefix, partitions, record)
			}
			return layoutOf(kind, cfg), nil
		}
		if attempt > 0 { // written by another Manager, then deleted: give up
			return keys.Layout{}, fmt.Errorf("synckairos: the layout record %s of prefix %q vanished as it was written", record, cfg.KeyPrefix)
		}
		kind = cfg.Layout
		if kind == LayoutDefault {
			held, err := holdsTagged(ctx, client, cfg)
			if err != nil {
				return keys.Layout{}, err
			}
			kind = LayoutSpread
			if held {
				kind = LayoutTags
			}
		}
		bounded, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
		err = client.Do(bounded, client.B().Set().Key(record).Value(kind.String()+" "+strconv.Itoa(cfg.Partitions)).Nx().Build()).Error()
		cancel()
		if err == nil {
			return layoutOf(kind, cfg), nil
		}
		if !rueidis.IsRedisNil(err) {
			return keys.Layout{}, fmt.Errorf("synckairos: writing the layout record %s: %w", record, err)
		}
		// Another Manager recorded the layout first: follow it.
	}
}

func layoutOf(kind KeyLayout, cfg *Config) keys.Layout {
	if kind == LayoutSpread {
		return keys.NewSpread(cfg.KeyPrefix, cfg.Partitions)
	}
	return keys.New(cfg.KeyPrefix, cfg.Partitions)
}

// readLayout reads a layout record.
func readLayout(ctx context.Context, client rueidis.Client, record string, timeout time.Duration) (kind KeyLayout, partitions int, found bool, err error) {
	bounded, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := client.Do(bounded, client.B().Get().Key(record).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("synckairos: reading the layout record %s: %w", record, err)
	}
	name, n, _ := strings.Cut(v, " ")
	partitions, perr := strconv.Atoi(n)
	switch {
	case perr != nil || partitions < 1 || partitions > MaxPartitions:
	case name == LayoutTags.String():
		return LayoutTags, partitions, true, nil
	case name == LayoutSpread.String():
		return LayoutSpread, partitions, true, nil
	}
	return 0, 0, false, fmt.Errorf("synckairos: the layout record %s holds %q, not a layout this version knows", record, v)
}

// holdsTagged reports whether cfg's prefix holds keys of the tags layout:
// a partition's deadline index, outbox or life counter, or else a session
// key, found by SCAN of every master (once per prefix: the answer is
// recorded).
func holdsTagged(ctx context.Context, client rueidis.Client, cfg *Config) (bool, error) {
	tags := keys.New(cfg.KeyPrefix, cfg.Partitions)
	cmds := make(rueidis.Commands, cfg.Partitions)
	for p := range cmds {
		cmds[p] = client.B().Exists().Key(tags.Deadlines(p), tags.Outbox(p), tags.Lives(p)).Build()
	}
	bounded, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	defer cancel()
	for _, r := range client.DoMulti(bounded, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			return false, fmt.Errorf("synckairos: looking for the keys of prefix %q: %w", cfg.KeyPrefix, err)
		}
		if n > 0 {
			return true, nil
		}
	}
	nodes := map[string]rueidis.Client{"": client}
	if client.Mode() == rueidis.ClientModeCluster {
		spans, err := slots.Get(ctx, client)
		if err != nil {
			return false, fmt.Errorf("synckairos: looking for the keys of prefix %q: %w", cfg.KeyPrefix, err)
		}
		all := client.Nodes()
		nodes = map[string]rueidis.Client{}
		for _, s := range spans {
			if nodes[s.Node] = all[s.Node]; nodes[s.Node] == nil {
				return false, fmt.Errorf("synckairos: looking for the keys of prefix %q: no connection to master %s", cfg.KeyPrefix, s.Node)
			}
		}
	}
	match := globEscape(cfg.KeyPrefix) + "{p[0-9]*}:s:*"
	for addr, node := range nodes {
		for cursor := uint64(0); ; {
			bounded, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
			e, err := node.Do(bounded, node.B().Scan().Cursor(cursor).Match(match).Count(layoutScanCount).Build()).AsScanEntry()
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					err = errors.Join(err, errors.New("set Config.Layout to skip the search"))
				}
				return false, fmt.Errorf("synckairos: looking for the sessions of prefix %q on %s: %w", cfg.KeyPrefix, nodeName(addr), err)
			}
			if len(e.Elements) > 0 {
				return true, nil
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return false, nil
}

func nodeName(addr string) string {
	if addr == "" {
		return "the server"
	}
	return addr
}
