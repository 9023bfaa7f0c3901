// Chessclock plays a 3+2 blitz game on the embedded default (an in-process
// Redis), with a simulated clock, so it runs in a blink:
//
//	go run ./examples/chessclock
//
// With SYNCKAIROS_REDIS_URL set it plays on that Redis or Redis Cluster
// instead (see the package doc of synckairos for the URL forms), still on the
// simulated clock.
//
// Each move is a SwitchCycle from the player who moved; the clocks are
// computed from the stored state and the time, never ticked. At the end
// black thinks too long, and the expirer, which any instance may run, calls
// the flag.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	clock := synckairostest.NewClock(synckairostest.Epoch) // moved by hand below
	m, closeAll, err := open(ctx, &synckairos.Config{Test: synckairos.TestConfig{Clock: clock}})
	if err != nil {
		return err
	}
	defer closeAll()

	// The expirer, and a subscriber that hears the flag fall.
	flag := make(chan synckairos.SessionEvent, 1)
	sub, err := m.SubscribeToUpdates(ctx, func(ev synckairos.SessionEvent) {
		if ev.State != nil && ev.State.Status == synckairos.StatusExpired {
			flag <- ev
		}
	})
	if err != nil {
		return err
	}
	defer sub.Close()
	expirerCtx, stopExpirer := context.WithCancel(ctx)
	defer stopExpirer()
	go m.RunExpirer(expirerCtx)

	if _, err := m.CreateSession(ctx, &synckairos.State{
		SessionID: "blitz",
		Mode:      synckairos.ModePerParticipant,
		Increment: 2 * time.Second,
		Participants: []synckairos.Participant{
			{ID: "white", TotalTime: 3 * time.Minute},
			{ID: "black", TotalTime: 3 * time.Minute},
		},
	}); err != nil {
		return err
	}
	s, err := m.StartSession(ctx, "blitz")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "3+2 blitz started at %s\n", clock.Now().Format("15:04:05"))

	// Each move: the time the mover thought, in seconds.
	moves := []struct {
		san   string
		think int
	}{
		{"1. e4", 2}, {"1... c5", 3}, {"2. Nf3", 4}, {"2... d6", 6},
		{"3. d4", 5}, {"3... cxd4", 2}, {"4. Nxd4", 3}, {"4... Nf6", 21},
		{"5. Nc3", 8}, {"5... a6", 47},
	}
	for _, mv := range moves {
		clock.Advance(time.Duration(mv.think) * time.Second)
		r, err := m.SwitchCycle(ctx, "blitz", &synckairos.SwitchOptions{From: s.ActiveParticipantID})
		if err != nil {
			return err
		}
		s = r.State
		fmt.Fprintf(out, "%-10s %2ds   white %s   black %s\n", mv.san, mv.think, show(s, "white", clock), show(s, "black", clock))
	}

	// White thinks 20 s and moves; black sinks into thought and flags.
	clock.Advance(20 * time.Second)
	if _, err := m.SwitchCycle(ctx, "blitz", &synckairos.SwitchOptions{From: "white"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "6. Be3      20s   black to move with %s on the clock, and thinks...\n", show(mustGet(ctx, m), "black", clock))
	clock.Advance(3 * time.Minute)
	select {
	case ev := <-flag:
		fmt.Fprintf(out, "flag: black ran out at %s; the game is %s (version %d)\n",
			ev.State.SessionCompletedAt.Format("15:04:05.000"), ev.State.Status, ev.Version)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("the expirer did not call the flag")
	}
	return nil
}

// open returns a Manager on the Redis of SYNCKAIROS_REDIS_URL, under a key
// prefix of its own so that every run starts afresh, or on the embedded
// default.
func open(ctx context.Context, cfg *synckairos.Config) (*synckairos.Manager, func(), error) {
	if url := os.Getenv("SYNCKAIROS_REDIS_URL"); url != "" {
		cfg.KeyPrefix = fmt.Sprintf("synckairos-chessclock:%d:", time.Now().UnixNano())
		m, err := synckairos.Dial(ctx, url, cfg)
		if err != nil {
			return nil, nil, err
		}
		return m, func() {
			m.DeleteSession(context.Background(), "blitz")
			m.Close()
		}, nil
	}
	srv, err := synckairostest.NewServer()
	if err != nil {
		return nil, nil, err
	}
	client, err := srv.NewClient()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	m, err := synckairos.New(client, cfg)
	if err != nil {
		client.Close()
		srv.Close()
		return nil, nil, err
	}
	return m, func() { m.Close(); client.Close(); srv.Close() }, nil
}

func mustGet(ctx context.Context, m *synckairos.Manager) *synckairos.State {
	s, err := m.GetSession(ctx, "blitz")
	if err != nil {
		log.Fatal(err)
	}
	return s
}

// show formats a player's clock as m:ss.
func show(s *synckairos.State, id string, clock *synckairostest.Clock) string {
	d, err := s.ParticipantRemainingAt(id, clock.Now())
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
