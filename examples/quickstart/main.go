// Quickstart runs synckairos on the embedded default, an in-process Redis
// fake, so it needs no server:
//
//	go run ./examples/quickstart
//
// With SYNCKAIROS_REDIS_URL set (redis://127.0.0.1:6379/0, say), it runs on
// that Redis instead.
//
// It plays two stateless instances of a game server, A and B, sharing one
// chess clock through Redis: A creates the session, B reads and starts it,
// A's stale update is refused with a conflict, and a retry goes through.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
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
		Metadata: map[string]string{"event": "quickstart"},
	})
	if err != nil {
		return err
	}
	defer a.DeleteSession(ctx, id)
	fmt.Printf("A created %s: version %d, %s, %s\n", id, created.Version, created.Status, banks(created))

	// B holds nothing of its own: it reads the session from Redis.
	read, err := b.GetSession(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("B read it:   version %d, %s, %s\n", read.Version, read.Status, banks(read))

	// B starts the clock: a compare-and-set on the version it read.
	now, err := b.Now(ctx) // the Redis server clock, the same on every instance
	if err != nil {
		return err
	}
	start := read.Clone()
	start.Status = synckairos.StatusRunning
	start.ActiveParticipantID = "white"
	start.SessionStartedAt, start.CycleStartedAt = &now, &now
	started, err := b.UpdateSession(ctx, start)
	if err != nil {
		return err
	}
	fmt.Printf("B started it: version %d, %s, white to move\n", started.Version, started.Status)

	// A still holds version 1. Its update is refused, and nothing is lost.
	stale := created.Clone()
	stale.Metadata["note"] = "from A"
	_, err = a.UpdateSession(ctx, stale)
	var conflict *synckairos.ConflictError
	if !errors.As(err, &conflict) {
		return fmt.Errorf("expected a conflict, got %v", err)
	}
	fmt.Printf("A's stale update was refused: %v (current status %s)\n", err, conflict.Current.Status)

	// MutateSession reads, applies and retries on conflict by itself.
	noted, err := a.MutateSession(ctx, id, func(s *synckairos.State) error {
		s.Metadata["note"] = "from A"
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("A retried with MutateSession: version %d, %s, note %q\n", noted.Version, noted.Status, noted.Metadata["note"])
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
