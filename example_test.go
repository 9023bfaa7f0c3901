package synckairos_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

// exampleManager returns a Manager on an in-process Redis with a clock fixed
// at synckairostest.Epoch, so the examples print the same every run.
func exampleManager() (*synckairos.Manager, func()) {
	srv, err := synckairostest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	client, err := srv.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	m, err := synckairos.New(client, &synckairos.Config{
		Test: synckairos.TestConfig{Clock: synckairostest.NewClock(synckairostest.Epoch)},
	})
	if err != nil {
		log.Fatal(err)
	}
	return m, func() { m.Close(); client.Close(); srv.Close() }
}

func ExampleManager_CreateSession() {
	m, done := exampleManager()
	defer done()
	ctx := context.Background()

	s, err := m.CreateSession(ctx, &synckairos.State{
		SessionID: "game-42",
		Mode:      synckairos.ModePerParticipant,
		Increment: 2 * time.Second,
		Participants: []synckairos.Participant{
			{ID: "white", TotalTime: 3 * time.Minute},
			{ID: "black", TotalTime: 3 * time.Minute},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.SessionID, s.Version, s.Status, s.CreatedAt.Format(time.RFC3339))

	_, err = m.CreateSession(ctx, s)
	fmt.Println(errors.Is(err, synckairos.ErrSessionExists))
	// Output:
	// game-42 1 pending 2026-01-01T12:00:00Z
	// true
}

func ExampleManager_MutateSession() {
	m, done := exampleManager()
	defer done()
	ctx := context.Background()
	if _, err := m.CreateSession(ctx, &synckairos.State{
		SessionID:    "turns",
		Mode:         synckairos.ModePerCycle,
		TimePerCycle: 30 * time.Second,
		Participants: []synckairos.Participant{{ID: "ann"}, {ID: "bob"}},
	}); err != nil {
		log.Fatal(err)
	}

	// A transition and the host's own change, committed as one version.
	s, err := m.MutateSession(ctx, "turns", func(s *synckairos.State) error {
		now, err := m.Now(ctx)
		if err != nil {
			return err
		}
		if err := s.Start(now); err != nil {
			return err
		}
		s.Metadata = map[string]string{"board": "empty"}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Version, s.Status, s.ActiveParticipantID, s.LastTransition.Type, s.Metadata["board"])
	// Output:
	// 2 running ann session_started empty
}

func ExampleConflictError() {
	m, done := exampleManager()
	defer done()
	ctx := context.Background()
	first, err := m.CreateSession(ctx, &synckairos.State{
		SessionID:    "race",
		Mode:         synckairos.ModeGlobal,
		TotalTime:    time.Minute,
		Participants: []synckairos.Participant{{ID: "a"}, {ID: "b"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.UpdateSession(ctx, first); err != nil { // moves it to version 2
		log.Fatal(err)
	}

	_, err = m.UpdateSession(ctx, first) // still based on version 1
	var conflict *synckairos.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println(conflict.Expected, conflict.Actual, conflict.Current.Version)
	}
	// Output:
	// 1 2 2
}
