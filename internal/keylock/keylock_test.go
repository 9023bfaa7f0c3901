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
			held, err := m.Lock(ctx, "k")
			if err != nil {
				t.Error(err)
				return
			}
			held.Guard(func() { // guarded or not, holders take turns
				mu.Lock()
				inside++
				maxInside = max(maxInside, inside)
				mu.Unlock()
				time.Sleep(100 * time.Microsecond)
				mu.Lock()
				inside--
				mu.Unlock()
			})
			held.Unlock()
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
	a, err := m.Lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Unlock()
	b, err := m.Lock(ctx, "b") // not blocked by a
	if err != nil {
		t.Fatal(err)
	}
	b.Unlock()
}

func TestLockHonoursContext(t *testing.T) {
	var m Map
	held, err := m.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Lock(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock of a held key with a cancelled context: %v", err)
	}
	held.Unlock()
	if n := m.Len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

// Inside Guard, the holder's own Lock of its key fails at once; another
// goroutine's waits; other keys are free.
func TestGuardRefusesTheHolder(t *testing.T) {
	var m Map
	ctx := context.Background()
	held, err := m.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error)
	held.Guard(func() {
		if _, err := m.Lock(ctx, "k"); !errors.Is(err, ErrHeldByCaller) {
			t.Errorf("the holder's second Lock: %v", err)
		}
		other, err := m.Lock(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		other.Unlock()
		go func() { // another goroutine waits for the holder
			cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err := m.Lock(cctx, "k")
			waited <- err
		}()
		if err := <-waited; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("another goroutine's Lock: %v, want to wait", err)
		}
	})
	held.Unlock()
	// Free again: the same goroutine takes it, guarded or not.
	held, err = m.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	held.Unlock()
	if n := m.Len(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

func BenchmarkLockUnlock(b *testing.B) {
	for _, guard := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "guarded"}[guard], func(b *testing.B) {
			var m Map
			ctx := context.Background()
			for b.Loop() {
				held, err := m.Lock(ctx, "k")
				if err != nil {
					b.Fatal(err)
				}
				if guard {
					held.Guard(func() {})
				}
				held.Unlock()
			}
		})
	}
}

// Past MaxPinned Guards at once, the others still tell their holder.
func TestGuardBeyondThePinnedOnes(t *testing.T) {
	var m Map
	ctx := context.Background()
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := range MaxPinned + 8 {
		ready.Add(1)
		done.Go(func() {
			key := string(rune('a'+i%26)) + string(rune('0'+i/26))
			held, err := m.Lock(ctx, key)
			if err != nil {
				t.Error(err)
				ready.Done()
				return
			}
			held.Guard(func() {
				ready.Done()
				<-release // every Guard is in at once
				if _, err := m.Lock(ctx, key); !errors.Is(err, ErrHeldByCaller) {
					t.Errorf("guard %d: second Lock: %v", i, err)
				}
			})
			held.Unlock()
		})
	}
	ready.Wait()
	close(release)
	done.Wait()
	if n := len(pinned); n != 0 {
		t.Fatalf("%d pin slots still taken", n)
	}
}
