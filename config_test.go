package synckairos_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/synckairostest"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	var nilCfg *synckairos.Config
	c := nilCfg.WithDefaults()
	if c.KeyPrefix != synckairos.DefaultKeyPrefix || c.SessionTTL != synckairos.DefaultSessionTTL ||
		c.Partitions != synckairos.DefaultPartitions || c.MaxAttempts != synckairos.DefaultMaxAttempts ||
		c.SubscriptionBuffer != synckairos.DefaultSubscriptionBuffer || c.Logger == nil ||
		c.WaitReplicas != 0 || c.WaitTimeout != synckairos.DefaultWaitTimeout || c.CallTimeout != synckairos.DefaultCallTimeout ||
		c.DecodeCacheBytes != synckairos.DefaultDecodeCacheBytes || c.MessageFormat != synckairos.DefaultMessageFormat {
		t.Fatalf("defaults: %+v", c)
	}
	logger := slog.New(slog.DiscardHandler)
	set := &synckairos.Config{KeyPrefix: "app:", SessionTTL: time.Minute, Partitions: 64, MaxAttempts: 9, SubscriptionBuffer: 7, ExpirerInterval: time.Second, Audit: true,
		WaitReplicas: 2, WaitTimeout: time.Second, CallTimeout: 3 * time.Second, DecodeCacheBytes: -1, MessageFormat: 3, Logger: logger}
	if got := set.WithDefaults(); *got != *set {
		t.Fatalf("WithDefaults changed set fields: %+v", got)
	}
	// A longer WaitTimeout lengthens the default CallTimeout past it.
	if got := (&synckairos.Config{WaitTimeout: 2 * time.Second}).WithDefaults(); got.CallTimeout != 2500*time.Millisecond {
		t.Fatalf("CallTimeout %v with a 2s WaitTimeout, want 2.5s", got.CallTimeout)
	}
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	srv, err := synckairostest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := srv.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for field, cfg := range map[string]*synckairos.Config{
		"KeyPrefix":          {KeyPrefix: "app{1}:"},
		"SessionTTL":         {SessionTTL: time.Millisecond},
		"Partitions":         {Partitions: synckairos.MaxPartitions + 1},
		"MaxAttempts":        {MaxAttempts: -1},
		"SubscriptionBuffer": {SubscriptionBuffer: -1},
		"WaitReplicas":       {WaitReplicas: -1},
		"WaitTimeout":        {WaitTimeout: time.Microsecond},
		"CallTimeout":        {CallTimeout: time.Millisecond},
		"MessageFormat":      {MessageFormat: 1},
	} {
		_, err := synckairos.New(client, cfg)
		if err == nil || !strings.Contains(err.Error(), "Config."+field) {
			t.Errorf("New with bad %s: %v, want an error naming Config.%s", field, err, field)
		}
	}
	if _, err := synckairos.New(nil, nil); err == nil {
		t.Error("New(nil, nil) succeeded")
	}
	if m, err := synckairos.New(client, nil); err != nil {
		t.Errorf("New with nil config: %v", err)
	} else {
		m.Close()
	}
}

// The Manager's clock follows the Redis server: on the fake, the fake clock;
// on a real server on this machine, the same time as the local clock.
func TestNowFollowsServerClock(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		m := b.newManager(nil)
		got := b.now(t, m)
		if b.fake != nil {
			if !got.Equal(b.fake.Now()) {
				t.Fatalf("Now %v, want the fake clock's %v", got, b.fake.Now())
			}
			b.fake.Advance(time.Minute)
			if got2 := b.now(t, m); got2.Sub(got) != time.Minute {
				t.Fatalf("after Advance(1m), Now moved %v", got2.Sub(got))
			}
			return
		}
		// Same machine, same clock: the calibration lands within half a
		// round trip (TIME has microsecond resolution); 50 ms leaves room
		// for a loaded machine.
		if d := time.Since(got); d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Fatalf("Now is %v away from the local clock", d)
		}
	})
}

func TestDialOwnsItsClient(t *testing.T) {
	t.Parallel()
	newClientAt(t, redisURL()) // skips without Redis
	ctx := context.Background()
	prefix := testPrefix(t)
	m, err := synckairos.Dial(ctx, redisURL(), &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deletePrefix(t, newClientAt(t, redisURL()), prefix) })
	if _, err := m.CreateSession(ctx, newState("dial", 1)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Its client is closed with it.
	if _, err := m.Client().Do(ctx, m.Client().B().Ping().Build()).ToString(); !errors.Is(err, rueidis.ErrClosing) {
		t.Errorf("Dial's client after Close: %v", err)
	}
	if _, err := synckairos.Dial(ctx, "http://nowhere", nil); err == nil {
		t.Error("Dial of a non-Redis URL succeeded")
	}
}
