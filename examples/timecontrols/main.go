// Timecontrols plays two games on the embedded default (an in-process
// Redis) with a simulated clock:
//
//	go run ./examples/timecontrols
//
// A go game in byo-yomi ("1+3x10": a minute, then three periods of ten
// seconds): a move within a period keeps it, a move that overruns one uses
// it up, and the last one running out is a flag, called by the expirer.
//
// A bullet game with lichess's lag compensation ("0.5+0"): white moves with
// 50 ms left on its clock, but the move spends 150 ms on the network and
// reaches the server 100 ms after the deadline. The host reports the lag
// with the switch; the quota pays for it, and the move stands. The same
// move without the compensation is a flag.
package main

import (
	"context"
	"errors"
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
	srv, err := synckairostest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	client, err := srv.NewClient()
	if err != nil {
		return err
	}
	defer client.Close()
	clock := synckairostest.NewClock(synckairostest.Epoch)
	m, err := synckairos.New(client, &synckairos.Config{Test: synckairos.TestConfig{Clock: clock}})
	if err != nil {
		return err
	}
	defer m.Close()
	expirer, stop := context.WithCancel(ctx)
	defer stop()
	go m.RunExpirer(expirer)

	if err := byoyomi(ctx, m, clock, out); err != nil {
		return err
	}
	return lagged(ctx, m, clock, out)
}

func byoyomi(ctx context.Context, m *synckairos.Manager, clock *synckairostest.Clock, out io.Writer) error {
	control := synckairos.MustParseTimeControl("1+3x10")
	if _, err := m.CreateSession(ctx, control.NewSession("go", "black", "white")); err != nil {
		return err
	}
	if _, err := m.StartSession(ctx, "go"); err != nil {
		return err
	}
	fmt.Fprintf(out, "go, %s: a minute, then 3 periods of 10 s\n", control)
	// Black plays on its main time, then in byo-yomi; white answers at once.
	for _, think := range []time.Duration{50 * time.Second, 9 * time.Second, 8 * time.Second, 14 * time.Second} {
		clock.Advance(think)
		if _, err := m.SwitchCycle(ctx, "go", &synckairos.SwitchOptions{From: "black"}); err != nil {
			return err
		}
		clock.Advance(time.Second)
		r, err := m.SwitchCycle(ctx, "go", &synckairos.SwitchOptions{From: "white"})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "black thinks %2.0fs: %s\n", think.Seconds(), reading(r.State, "black", clock.Now()))
	}
	fmt.Fprintln(out, "black thinks on...")
	clock.Advance(25 * time.Second)
	s, err := waitFinished(ctx, m, "go")
	if err != nil {
		return err
	}
	t := s.LastTransition
	fmt.Fprintf(out, "flag: %s ran out of its last period at %s (%s, %d periods used)\n\n", t.From, t.At.Format("15:04:05.000"), t.Type, t.PeriodsUsed)
	return nil
}

func lagged(ctx context.Context, m *synckairos.Manager, clock *synckairostest.Clock, out io.Writer) error {
	control := synckairos.MustParseTimeControl("0.5+0")
	// lichess's numbers for 0.5+0: a gain of 0.4% of 30 s + 150 ms = 270 ms.
	lag := &synckairos.LagCompensation{Gain: 270 * time.Millisecond, Initial: 810 * time.Millisecond, Max: 1890 * time.Millisecond, Grace: 2 * time.Second}
	for _, game := range []struct {
		id  string
		lag *synckairos.LagCompensation
	}{{"bullet", lag}, {"bullet-without", nil}} {
		s := control.NewSession(game.id, "white", "black")
		s.Lag = game.lag
		if _, err := m.CreateSession(ctx, s); err != nil {
			return err
		}
		if _, err := m.StartSession(ctx, game.id); err != nil {
			return err
		}
		// White thinks 29.95 s; its move arrives 150 ms later.
		clock.Advance(30*time.Second + 100*time.Millisecond)
		r, err := m.SwitchCycle(ctx, game.id, &synckairos.SwitchOptions{From: "white", Lag: 150 * time.Millisecond})
		var te *synckairos.TransitionError
		switch {
		case err == nil:
			t := r.State.LastTransition
			fmt.Fprintf(out, "%s, %s, lag compensation: white's move arrives 100 ms after its deadline with 150 ms of lag: accepted, %d ms compensated, %s left\n",
				game.id, control, t.Compensation.Milliseconds(), r.State.Participant("white").TotalTime)
		case errors.As(err, &te):
			fmt.Fprintf(out, "%s, %s, no compensation: the same move is refused: %s\n", game.id, control, te.Current.LastTransition.Type)
		default:
			return err
		}
	}
	return nil
}

func reading(s *synckairos.State, id string, now time.Time) string {
	r, err := s.ReadingAt(id, now)
	if err != nil {
		return err.Error()
	}
	if !r.InOvertime {
		return fmt.Sprintf("main time %s, then %d × 10s", r.Main, r.Periods)
	}
	return fmt.Sprintf("byo-yomi, %d periods of 10s left", r.Periods)
}

func waitFinished(ctx context.Context, m *synckairos.Manager, id string) (*synckairos.State, error) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s, err := m.GetSession(ctx, id)
		if err != nil {
			return nil, err
		}
		if s.Status != synckairos.StatusRunning {
			return s, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, fmt.Errorf("the expirer did not call the flag")
}
