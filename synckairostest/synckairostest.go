// Package synckairostest runs synckairos on an in-process Redis fake
// (miniredis), for host applications' tests and for programs that want the
// library without a Redis server.
//
// In a test, NewManager is all it takes:
//
//	m, fake := synckairostest.NewManager(t, nil)
//	s, err := m.CreateSession(ctx, state)
//	fake.Advance(30 * time.Second) // moves the Manager's clock and Redis TTLs
//
// The fake's clock starts at Epoch and moves only when told. A second
// Manager on the same fake, with a client of its own, stands in for another
// instance of the host application: fake.NewManager(t, cfg).
//
// Outside tests, NewServer starts the fake on its own; its managers use the
// real clock.
package synckairostest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
)

// Epoch is where the clock of a Fake starts.
var Epoch = time.Date(2026, time.January, 1, 12, 0, 0, 0, time.UTC)

// Server is an in-process Redis server (miniredis).
type Server struct {
	mr *miniredis.Miniredis
}

// NewServer starts an in-process Redis server on a free loopback port.
// Close stops it.
func NewServer() (*Server, error) {
	mr, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("synckairostest: start miniredis: %w", err)
	}
	return &Server{mr: mr}, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.mr.Addr() }

// SetError makes every command the server receives fail with the error
// msg (such as "LOADING" or "ERR injected"), until it is called with "":
// for tests of what the host does when Redis refuses.
func (s *Server) SetError(msg string) { s.mr.SetError(msg) }

// NewClient returns a new rueidis client of the server, with the options
// miniredis needs: client-side caching disabled, and RESP2, since in RESP3
// rueidis multiplexes pub/sub on the command connection, which miniredis
// refuses. The caller closes it.
func (s *Server) NewClient() (rueidis.Client, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  []string{s.mr.Addr()},
		DisableCache: true,
		AlwaysRESP2:  true,
		// miniredis answers CLUSTER SLOTS as a one-node cluster, which
		// would make rueidis a cluster client, and the Manager use sharded
		// pub/sub, which miniredis lacks.
		ForceSingleClient: true,
		// One pipelined connection, opened by the first command: an
		// in-process server gains nothing from more, and tests that count
		// goroutines see no connection dialled later.
		PipelineMultiplex: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("synckairostest: connect to miniredis: %w", err)
	}
	return c, nil
}

// Close stops the server.
func (s *Server) Close() { s.mr.Close() }

// Clock is a clock that moves only when told. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
	mr  *miniredis.Miniredis // moved along, when set
}

// NewClock returns a clock at t that moves nothing else.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock, and the fake Redis's TTLs and TIME with it, by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	if c.mr != nil {
		c.mr.SetTime(c.now)
		c.mr.FastForward(d)
	}
}

// Fake is an in-process Redis and a shared clock for the Managers on it.
type Fake struct {
	*Clock
	server *Server
}

// Server returns the fake's Redis server.
func (f *Fake) Server() *Server { return f.server }

// NewManager returns a Manager on a new fake Redis whose clock starts at
// Epoch. cfg may be nil; its Test.Clock, if unset, is the fake's clock. The
// Manager, its client and the fake are closed when the test ends.
func NewManager(tb testing.TB, cfg *synckairos.Config) (*synckairos.Manager, *Fake) {
	tb.Helper()
	srv, err := NewServer()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	clock := NewClock(Epoch)
	clock.mr = srv.mr
	srv.mr.SetTime(Epoch)
	f := &Fake{Clock: clock, server: srv}
	return f.NewManager(tb, cfg), f
}

// NewManager returns another Manager on the fake, with a client of its own:
// another instance of the host application. It is closed when the test ends.
func (f *Fake) NewManager(tb testing.TB, cfg *synckairos.Config) *synckairos.Manager {
	tb.Helper()
	client, err := f.server.NewClient()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(client.Close)
	var c synckairos.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Test.Clock == nil {
		c.Test.Clock = f.Clock
	}
	m, err := synckairos.New(client, &c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}
