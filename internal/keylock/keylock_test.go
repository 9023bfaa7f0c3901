package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLockSerializesOneKey(t *testing.T) {
	var m Map
	ctx := context.Background()
	var inside, maxInside int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			unlock, err := m.Lock(ctx, "k")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("%d holders at once", maxInside)
	}
	if n := m.Len(); n != 0 {
		t.Fatalf("%d entries left after every unlock", n)
	}
}

func TestLockKeysAreIndependent(t *testing.T) {
	var m Map
	ctx := context.Background()
	unlockA, err := m.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	// "b" is free although "a" is held: this would block forever otherwise.
	unlockB, err := m.Lock(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
}

func TestLockHonoursContext(t *testing.T) {
	var m Map
	unlock, err := m.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Lock(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock of a held key with a cancelled context: %v", err)
	}
	unlock()
	if n := m.Len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}
