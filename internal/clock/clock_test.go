package clock

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"
)

func newClient(t *testing.T, mr *miniredis.Miniredis) rueidis.Client {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{mr.Addr()}, DisableCache: true, AlwaysRESP2: true, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// The clock follows the server's time, not the local one, and keeps moving
// with the local monotonic clock between calibrations.
func TestFollowsServerClock(t *testing.T) {
	mr := miniredis.RunT(t)
	server := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mr.SetTime(server)
	c := NewRedis(newClient(t, mr), time.Hour, func(err error) { t.Errorf("recalibration failed: %v", err) })
	ctx := context.Background()
	first, err := c.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := first.Sub(server); d < 0 || d > time.Second {
		t.Fatalf("Now %v, want just after the server's %v", first, server)
	}
	time.Sleep(5 * time.Millisecond)
	second, _ := c.Now(ctx)
	if d := second.Sub(first); d < 5*time.Millisecond {
		t.Fatalf("clock moved %v across a 5ms sleep", d)
	}
}

// A failed recalibration keeps the previous offset and reports the failure.
func TestRecalibrationFailureKeepsOffset(t *testing.T) {
	mr := miniredis.RunT(t)
	server := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mr.SetTime(server)
	var failures int
	c := NewRedis(newClient(t, mr), time.Nanosecond, func(error) { failures++ })
	ctx := context.Background()
	if _, err := c.Now(ctx); err != nil {
		t.Fatal(err)
	}
	mr.Close()
	got, err := c.Now(ctx)
	if err != nil {
		t.Fatalf("Now after the server went away: %v", err)
	}
	if failures == 0 {
		t.Error("failed recalibration not reported")
	}
	if d := got.Sub(server); d < 0 || d > 5*time.Second {
		t.Errorf("Now %v, want the old offset near %v", got, server)
	}
}

func TestFirstCalibrationFailureIsAnError(t *testing.T) {
	mr := miniredis.RunT(t)
	client := newClient(t, mr)
	mr.Close()
	c := NewRedis(client, time.Hour, func(error) {})
	if _, err := c.Now(context.Background()); err == nil {
		t.Fatal("Now without a server succeeded")
	}
}
