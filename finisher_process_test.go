package synckairos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
)

// finisherChildEnv, set to a key prefix, makes the test binary a finisher
// process (see TestMain): it runs RunFinisher on the real Redis until it
// is killed or told to stop, and counts each handler call in the hash
// <prefix>handled, keyed by Finish.Key.
const finisherChildEnv = "SYNCKAIROS_FINISHER_CHILD"

// finisherClaimAfter is the ClaimAfter of the finisher processes.
const finisherClaimAfter = time.Second

func finisherChild() int {
	prefix, name := os.Getenv(finisherChildEnv), os.Getenv("SYNCKAIROS_FINISHER_NAME")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	opt, err := rueidis.ParseURL(redisURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer client.Close()
	m, err := synckairos.New(client, &synckairos.Config{KeyPrefix: prefix, QueueFinishes: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer m.Close()
	handled, lateness := prefix+"handled", prefix+"lateness"
	handler := func(ctx context.Context, f synckairos.Finish) error {
		late := time.Since(f.State.LastTransition.At)
		time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond) // the host's work
		cmds := rueidis.Commands{client.B().Hincrby().Key(handled).Field(f.Key()).Increment(1).Build()}
		if f.Delivery == 1 {
			cmds = append(cmds, client.B().Rpush().Key(lateness).Element(strconv.FormatInt(late.Microseconds(), 10)).Build())
		} else {
			cmds = append(cmds, client.B().Incr().Key(prefix+"takeovers").Build())
		}
		for _, r := range client.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		return nil
	}
	client.Do(ctx, client.B().Sadd().Key(prefix+"ready").Member(name).Build())
	err = m.RunFinisher(ctx, handler, &synckairos.FinisherConfig{Consumer: name, ClaimAfter: finisherClaimAfter})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Three OS processes run the finish handler of 1,000 sessions finishing
// (completed, cancelled, expired); one is killed with SIGKILL in the
// middle. Every finish is handled; each exactly once but for the
// duplicates the docs allow (a process killed after its handler returned
// and before it removed the finish), whose count is reported.
func TestFinishOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	raw := newRedisClient(t)
	prefix := testPrefix(t)
	t.Cleanup(func() { deletePrefix(t, raw, prefix) })
	m, err := synckairos.New(newRedisClient(t), &synckairos.Config{KeyPrefix: prefix, QueueFinishes: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := context.Background()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var procs []*exec.Cmd
	for i := range 3 {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), finisherChildEnv+"="+prefix, fmt.Sprintf("SYNCKAIROS_FINISHER_NAME=p%d", i))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	})
	waitFor(t, 30*time.Second, "3 finisher processes", func() bool {
		n, _ := raw.Do(ctx, raw.B().Scard().Key(prefix+"ready").Build()).AsInt64()
		return n == 3
	})

	runExpirer(t, m)
	const sessions = 1000
	start := time.Now()
	for i := range sessions {
		id := fmt.Sprint("game-", i)
		bank := time.Minute
		if i%3 == 2 {
			bank = time.Duration(300+rand.IntN(1500)) * time.Millisecond // runs out
		}
		mustCreate(t, m, &synckairos.State{SessionID: id, Mode: synckairos.ModePerParticipant, Participants: players(bank, "a", "b")})
		if _, err := m.StartSession(ctx, id); err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0:
			_, err = m.CompleteSession(ctx, id)
		case 1:
			_, err = m.CancelSession(ctx, id)
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == sessions/2 {
			waitFor(t, 30*time.Second, "finishes handled before the kill", func() bool {
				n, _ := raw.Do(ctx, raw.B().Hlen().Key(prefix+"handled").Build()).AsInt64()
				return n >= 200
			})
			if err := procs[0].Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			t.Logf("p0 killed after %v", time.Since(start))
		}
	}
	waitFor(t, 60*time.Second, "every finish handled", func() bool {
		n, _ := raw.Do(ctx, raw.B().Hlen().Key(prefix+"handled").Build()).AsInt64()
		return n == sessions
	})
	t.Logf("1,000 finishes handled in %v", time.Since(start))
	counts, err := raw.Do(ctx, raw.B().Hgetall().Key(prefix+"handled").Build()).AsIntMap()
	if err != nil {
		t.Fatal(err)
	}
	duplicates := 0
	for key, n := range counts {
		switch {
		case n == 2:
			duplicates++
		case n != 1:
			t.Errorf("%s handled %d times", key, n)
		}
	}
	lat, err := raw.Do(ctx, raw.B().Lrange().Key(prefix+"lateness").Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	us := make([]int64, 0, len(lat))
	for _, l := range lat {
		v, _ := strconv.ParseInt(l, 10, 64)
		us = append(us, v)
	}
	slices.Sort(us)
	takeovers, _ := raw.Do(ctx, raw.B().Get().Key(prefix+"takeovers").Build()).AsInt64()
	t.Logf("handled once: %d; taken over from the killed process: %d; duplicates (a process killed between its handler's return and the removal): %d; first deliveries, from the finishing write to the handler's call: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		len(counts)-duplicates, takeovers, duplicates, float64(us[len(us)/2])/1000, float64(us[len(us)*99/100])/1000, float64(us[len(us)-1])/1000)
	if duplicates > synckairos.DefaultFinishConcurrency {
		t.Errorf("%d duplicates: more than the %d finishes one process can hold at once", duplicates, synckairos.DefaultFinishConcurrency)
	}
}
