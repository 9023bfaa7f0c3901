package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// PartitionStats describes one outbox.
type PartitionStats struct {
	Partition int
	// Length is the number of events in the outbox: not yet relayed, or
	// relayed and not yet acknowledged.
	Length int64
	// Pending is the number of those a relay has read and not acknowledged.
	Pending int64
	// OldestAge is the age of the oldest event in the outbox; zero if empty.
	OldestAge time.Duration
}

// Stats describes the audit pipeline at one moment.
type Stats struct {
	Partitions []PartitionStats
	// OldestUnrelayed is the largest OldestAge of the partitions.
	OldestUnrelayed time.Duration
	// Jobs counts the audit jobs in River by state (available, running,
	// completed, retryable, discarded, …), from the table river_job in the
	// search_path of the relay's pool.
	Jobs map[string]int64
}

// Stats returns the outbox lengths, pending events and ages per partition,
// and the audit jobs by state.
func (r *Relay) Stats(ctx context.Context) (Stats, error) {
	now, err := r.now(ctx)
	if err != nil {
		return Stats{}, err
	}
	streams := r.streams()
	cmds := make(rueidis.Commands, 0, 3*len(streams))
	for _, s := range streams {
		cmds = append(cmds,
			r.client.B().Xlen().Key(s).Build(),
			r.client.B().Xpending().Key(s).Group(ConsumerGroup).Build(),
			r.client.B().Xrange().Key(s).Start("-").End("+").Count(1).Build())
	}
	res := r.client.DoMulti(ctx, cmds...)
	st := Stats{Partitions: make([]PartitionStats, len(streams)), Jobs: map[string]int64{}}
	for p := range streams {
		ps := PartitionStats{Partition: p}
		if ps.Length, err = res[3*p].AsInt64(); err != nil {
			return Stats{}, fmt.Errorf("audit: stats: %w", err)
		}
		if summary, err := res[3*p+1].ToArray(); err == nil && len(summary) > 0 {
			ps.Pending, _ = summary[0].AsInt64()
		} else if err != nil && !isNoGroup(err) {
			return Stats{}, fmt.Errorf("audit: stats: %w", err)
		}
		oldest, err := res[3*p+2].AsXRange()
		if err != nil {
			return Stats{}, fmt.Errorf("audit: stats: %w", err)
		}
		if len(oldest) > 0 {
			ms, _, _ := strings.Cut(oldest[0].ID, "-")
			if at, err := strconv.ParseInt(ms, 10, 64); err == nil {
				ps.OldestAge = max(now.Sub(time.UnixMilli(at)), 0)
			}
		}
		st.OldestUnrelayed = max(st.OldestUnrelayed, ps.OldestAge)
		st.Partitions[p] = ps
	}
	rows, err := r.pool.Query(ctx, `SELECT state::text, count(*) FROM river_job WHERE kind = $1 GROUP BY state`, JobKind)
	if err != nil {
		return Stats{}, fmt.Errorf("audit: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return Stats{}, fmt.Errorf("audit: stats: %w", err)
		}
		st.Jobs[state] = n
	}
	return st, rows.Err()
}
