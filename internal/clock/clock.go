// Package clock gives every synckairos instance the same time base: the Redis
// server clock, followed locally with the monotonic clock between calibrations.
package clock

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// samples is how many TIME round trips one calibration takes; the one with
// the shortest round trip wins, as its midpoint estimate is the tightest.
const samples = 3

// Redis follows the clock of a Redis server.
type Redis struct {
	client  rueidis.Client
	every   time.Duration
	timeout time.Duration // bounds each TIME call; 0: unbounded
	onFail  func(error)

	mu  sync.Mutex // held while calibrating
	cur atomic.Pointer[calibration]
}

type calibration struct {
	local  time.Time // local time of the estimate, with its monotonic reading
	server time.Time // server time at local
}

// NewRedis returns a clock that calibrates against client's TIME on first use
// and again once a calibration is older than every. onFail is told of a failed
// recalibration, after which the previous calibration stays in use.
func NewRedis(client rueidis.Client, every time.Duration, onFail func(error)) *Redis {
	return &Redis{client: client, every: every, onFail: onFail}
}

// Now returns the current server time. Only the first call, and the one call
// that recalibrates, talk to Redis; every other call is local.
func (c *Redis) Now(ctx context.Context) (time.Time, error) {
	cal := c.cur.Load()
	if cal == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if cal = c.cur.Load(); cal == nil {
			var err error
			if cal, err = c.calibrate(ctx); err != nil {
				return time.Time{}, err
			}
		}
	} else if time.Since(cal.local) >= c.every && c.mu.TryLock() {
		// One caller recalibrates; the others go on with the previous offset.
		if next, err := c.calibrate(ctx); err != nil {
			c.onFail(err)
		} else {
			cal = next
		}
		c.mu.Unlock()
	}
	return cal.server.Add(time.Since(cal.local)), nil
}

func (c *Redis) calibrate(ctx context.Context) (*calibration, error) {
	var best *calibration
	var bestRTT time.Duration
	for range samples {
		sent := time.Now()
		server, err := c.serverTime(ctx)
		if err != nil {
			return nil, fmt.Errorf("clock calibration: %w", err)
		}
		rtt := time.Since(sent)
		if best == nil || rtt < bestRTT {
			// The server read its clock somewhere in the round trip: assume
			// the middle.
			best = &calibration{local: sent.Add(rtt / 2), server: server}
			bestRTT = rtt
		}
	}
	c.cur.Store(best)
	return best, nil
}

// SetTimeout bounds each TIME call of a calibration (0: unbounded), so that a
// node that does not answer fails a calibration instead of holding it.
func (c *Redis) SetTimeout(d time.Duration) { c.timeout = d }

func (c *Redis) serverTime(ctx context.Context) (time.Time, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	parts, err := c.client.Do(ctx, c.client.B().Time().Build()).AsStrSlice()
	if err != nil && ctx.Err() == nil && c.client.Mode() == rueidis.ClientModeCluster {
		// The node picked may be down: any other tells the time as well.
		for _, node := range c.client.Nodes() {
			if parts, err = node.Do(ctx, node.B().Time().Build()).AsStrSlice(); err == nil || ctx.Err() != nil {
				break
			}
		}
	}
	if err != nil {
		return time.Time{}, err
	}
	if len(parts) != 2 {
		return time.Time{}, fmt.Errorf("TIME returned %d fields, want 2", len(parts))
	}
	sec, err1 := strconv.ParseInt(parts[0], 10, 64)
	usec, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, fmt.Errorf("TIME returned %q", parts)
	}
	return time.Unix(sec, usec*1000), nil
}
