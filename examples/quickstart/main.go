// Quickstart runs synckairos on the embedded default, an in-process Redis
// fake, so it needs no server:
//
//	go run ./examples/quickstart
//
// With SYNCKAIROS_REDIS_URL set (redis://127.0.0.1:6379/0, say), it runs on
// that Redis instead.
//
// It plays two stateless instances of a game server, A and B, sharing one
// chess clock through Redis: A creates a 3+2 game, B starts it, the players
// move through either instance (each move committed with its clock in one
// write, a duplicate of a move refused), a stale update is refused with a
// conflict and retried, the game is paused and resumed, and in a second,
// bullet-fast game the expirer flags a player whose late move is refused.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	// Two instances of the application, each with its own Redis client.
	a, b, where, closeAll, err := instances(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Println("running on", where)

	id := fmt.Sprintf("quickstart-%d", time.Now().UnixNano())
	created, err := a.CreateSession(ctx, &synckairos.State{
		SessionID: id,
		Mode:      synckairos.ModePerParticipant,
		Increment: 2 * time.Second,
		Participants: []synckairos.Participant{
			{ID: "white", TotalTime: 3 * time.Minute},
			{ID: "black", TotalTime: 3 * time.Minute},
		},
		Metadata: map[string]string{"moves": ""},
	})
	if err != nil {
		return err
	}
	defer a.DeleteSession(ctx, id)
	fmt.Printf("A created %s: version %d, %s, %s\n", id, created.Version, created.Status, banks(created))

	// B holds nothing of its own: it reads and starts the session in Redis.
	s, err := b.StartSession(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("B started it: version %d, %s, %s to move\n", s.Version, s.Status, s.ActiveParticipantID)

	// Moves through either instance. Each commits the move and the clock in
	// one compare-and-set: one version, one event, one audit row. The turn
	// it ends makes a retried request harmless.
	instance := map[string]*synckairos.Manager{"white": a, "black": b}
	name := map[*synckairos.Manager]string{a: "A", b: "B"}
	var lastMove *synckairos.SwitchOptions
	for _, move := range []string{"e4", "e5", "Nf3", "Nc6"} {
		time.Sleep(20 * time.Millisecond) // the player thinks
		m := instance[s.ActiveParticipantID]
		opts := &synckairos.SwitchOptions{
			From: s.ActiveParticipantID,
			Turn: s.Turn,
			Edit: func(s *synckairos.State) error {
				s.Metadata["moves"] = strings.TrimSpace(s.Metadata["moves"] + " " + move)
				return nil
			},
		}
		r, err := m.SwitchCycle(ctx, id, opts)
		if err != nil {
			return err
		}
		s, lastMove = r.State, opts
		t := s.LastTransition
		fmt.Printf("%s: %-5s %-3s used %v, +%v increment; %s\n", name[m], t.From, move, t.Used, t.Increment, banks(s))
	}

	// The same move sent again (a client's retry): told apart, not replayed.
	_, err = a.SwitchCycle(ctx, id, lastMove)
	var turn *synckairos.TurnError
	if !errors.As(err, &turn) || !errors.Is(err, synckairos.ErrTurnEnded) {
		return fmt.Errorf("expected the duplicate to be refused, got %v", err)
	}
	fmt.Printf("A: black's Nc6 again: refused (%v), still version %d, moves %q\n",
		synckairos.ErrTurnEnded, turn.Current.Version, turn.Current.Metadata["moves"])

	// A still holds version 1: a stale update is refused, and nothing is
	// lost; MutateSession reads, applies and retries on conflict by itself.
	stale := created.Clone()
	stale.Metadata["note"] = "from A"
	_, err = a.UpdateSession(ctx, stale)
	var conflict *synckairos.ConflictError
	if !errors.As(err, &conflict) {
		return fmt.Errorf("expected a conflict, got %v", err)
	}
	fmt.Printf("A's stale update was refused: %v\n", err)
	noted, err := a.MutateSession(ctx, id, func(s *synckairos.State) error {
		s.Metadata["note"] = "from A"
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("A retried with MutateSession: version %d, note %q\n", noted.Version, noted.Metadata["note"])

	// Pause: no clock runs; resume where they stopped.
	if s, err = b.PauseSession(ctx, id); err != nil {
		return err
	}
	fmt.Printf("B paused it: %s, %s\n", s.Status, banks(s))
	if s, err = a.ResumeSession(ctx, id); err != nil {
		return err
	}
	fmt.Printf("A resumed it: %s, %s to move\n", s.Status, s.ActiveParticipantID)

	return flag(ctx, a, b)
}

// flag plays a bullet-fast game in which white runs out of time: the
// expirer, on B, flags white at the deadline, and white's late move,
// through A, does not rescue it.
func flag(ctx context.Context, a, b *synckairos.Manager) error {
	expirerCtx, stopExpirer := context.WithCancel(ctx)
	expirerDone := make(chan error, 1)
	go func() { expirerDone <- b.RunExpirer(expirerCtx) }()
	defer func() { stopExpirer(); <-expirerDone }()

	id := fmt.Sprintf("quickstart-bullet-%d", time.Now().UnixNano())
	if _, err := a.CreateSession(ctx, &synckairos.State{
		SessionID: id,
		Mode:      synckairos.ModePerParticipant,
		Participants: []synckairos.Participant{
			{ID: "white", TotalTime: 200 * time.Millisecond},
			{ID: "black", TotalTime: 200 * time.Millisecond},
		},
	}); err != nil {
		return err
	}
	defer a.DeleteSession(ctx, id)
	if _, err := a.StartSession(ctx, id); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond) // white thinks too long
	_, err := a.SwitchCycle(ctx, id, &synckairos.SwitchOptions{From: "white", Turn: 1})
	var refused *synckairos.TransitionError
	if !errors.As(err, &refused) {
		return fmt.Errorf("expected the late move to be refused, got %v", err)
	}
	s := refused.Current
	t := s.LastTransition
	fmt.Printf("bullet game: white's late move was refused; %s flagged (%s, after %v), the game is %s\n",
		strings.Join(t.Expired, ", "), t.Type, t.Used, s.Status)
	return nil
}

func banks(s *synckairos.State) string {
	out := ""
	for i, p := range s.Participants {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %v", p.ID, p.TotalTime)
	}
	return out
}

// instances returns two Managers on the Redis of SYNCKAIROS_REDIS_URL, or on
// an embedded in-process Redis when it is unset.
func instances(ctx context.Context) (a, b *synckairos.Manager, where string, closeAll func(), err error) {
	if url := os.Getenv("SYNCKAIROS_REDIS_URL"); url != "" {
		if a, err = synckairos.Dial(ctx, url, nil); err != nil {
			return nil, nil, "", nil, err
		}
		if b, err = synckairos.Dial(ctx, url, nil); err != nil {
			a.Close()
			return nil, nil, "", nil, err
		}
		return a, b, url, func() { a.Close(); b.Close() }, nil
	}
	srv, err := synckairostest.NewServer()
	if err != nil {
		return nil, nil, "", nil, err
	}
	var clients []rueidis.Client
	closeAll = func() {
		for _, m := range []*synckairos.Manager{a, b} {
			if m != nil {
				m.Close()
			}
		}
		for _, c := range clients {
			c.Close()
		}
		srv.Close()
	}
	for _, m := range []**synckairos.Manager{&a, &b} {
		client, err := srv.NewClient()
		if err != nil {
			closeAll()
			return nil, nil, "", nil, err
		}
		clients = append(clients, client)
		if *m, err = synckairos.New(client, nil); err != nil {
			closeAll()
			return nil, nil, "", nil, err
		}
	}
	return a, b, "the embedded in-process Redis (set SYNCKAIROS_REDIS_URL for a real one)", closeAll, nil
}
