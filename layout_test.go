package synckairos_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/internal/keys"
)

// The default layout follows what a prefix holds: a new prefix gets the
// spread layout; one holding keys of the tags layout (a deployment made
// before layouts could be chosen), whether a partition's index or only a
// session key, keeps it; the choice is recorded, concurrent first Managers
// agree, and a Manager contradicting the record is refused.
func TestDefaultLayout(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		open := func(cfg *synckairos.Config) (*synckairos.Manager, error) {
			m, err := synckairos.New(b.raw, cfg)
			if err == nil {
				t.Cleanup(func() { m.Close() })
			}
			return m, err
		}
		mustOpen := func(cfg *synckairos.Config) *synckairos.Manager {
			t.Helper()
			m, err := open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		record := func(prefix string) string {
			t.Helper()
			v, err := b.raw.Do(ctx, b.raw.B().Get().Key(prefix+"layout").Build()).ToString()
			if err != nil {
				t.Fatalf("the layout record of %s: %v", prefix, err)
			}
			return v
		}
		t.Cleanup(func() { deletePrefix(t, b.raw, b.prefix) })

		// A new prefix, by several Managers at once.
		fresh := b.prefix + "new:"
		var wg sync.WaitGroup
		got := make([]keys.Layout, 6)
		for i := range got {
			wg.Go(func() { got[i] = synckairos.KeysOf(mustOpen(&synckairos.Config{KeyPrefix: fresh})) })
		}
		wg.Wait()
		spread := keys.NewSpread(fresh, synckairos.DefaultPartitions)
		for i, l := range got {
			if l.Session("x") != spread.Session("x") {
				t.Fatalf("Manager %d of a new prefix: %s, want the spread layout's %s", i, l.Session("x"), spread.Session("x"))
			}
		}
		if r := record(fresh); r != "spread 16" {
			t.Fatalf("record %q", r)
		}

		// A deployment of the tags layout without a record: its sessions
		// stay where they are, found by a partition's keys or by SCAN.
		for _, c := range []struct {
			name  string
			leave func(old *synckairos.Manager, prefix string) // what the old deployment holds
		}{
			{"a session key alone", func(old *synckairos.Manager, prefix string) {
				l := synckairos.KeysOf(old)
				for p := range l.Partitions() {
					b.raw.Do(ctx, b.raw.B().Del().Key(l.Lives(p), l.Outbox(p), l.Deadlines(p)).Build())
				}
			}},
			{"a life counter", func(*synckairos.Manager, string) {}},
		} {
			prefix := b.prefix + strings.ReplaceAll(c.name, " ", "-") + ":"
			old := mustOpen(&synckairos.Config{KeyPrefix: prefix, Layout: synckairos.LayoutTags})
			mustCreate(t, old, newState("legacy", 2))
			c.leave(old, prefix)
			if err := b.raw.Do(ctx, b.raw.B().Del().Key(prefix+"layout").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			m := mustOpen(&synckairos.Config{KeyPrefix: prefix})
			if s, err := m.GetSession(ctx, "legacy"); err != nil || s.Version != 1 {
				t.Fatalf("%s: the stored session: %v, %v", c.name, s, err)
			}
			if r := record(prefix); r != "tags 16" {
				t.Fatalf("%s: record %q", c.name, r)
			}
		}

		// A prefix with glob characters is matched literally: the sessions
		// of "…ab:" are not those of "…a*:".
		mustCreate(t, mustOpen(&synckairos.Config{KeyPrefix: b.prefix + "ab:", Layout: synckairos.LayoutTags}), newState("other", 2))
		b.raw.Do(ctx, b.raw.B().Del().Key(b.prefix+"ab:layout").Build())
		star := mustOpen(&synckairos.Config{KeyPrefix: b.prefix + "a*:"})
		if got, want := synckairos.KeysOf(star).Session("x"), keys.NewSpread(b.prefix+"a*:", synckairos.DefaultPartitions).Session("x"); got != want {
			t.Fatalf("prefix a*: %s, want %s", got, want)
		}

		// Contradicting the record.
		for _, cfg := range []synckairos.Config{
			{KeyPrefix: fresh, Layout: synckairos.LayoutTags},
			{KeyPrefix: fresh, Partitions: 32},
		} {
			if _, err := open(&cfg); err == nil || !strings.Contains(err.Error(), fresh+"layout") {
				t.Errorf("%+v over a spread record: %v", cfg, err)
			}
		}
		mustOpen(&synckairos.Config{KeyPrefix: fresh, Layout: synckairos.LayoutSpread})

		// A record this version cannot read.
		b.raw.Do(ctx, b.raw.B().Set().Key(b.prefix+"odd:layout").Value("hexagonal 16").Build())
		if _, err := open(&synckairos.Config{KeyPrefix: b.prefix + "odd:"}); err == nil || !strings.Contains(err.Error(), "hexagonal") {
			t.Errorf("an unknown layout: %v", err)
		}
	})
}

// New fails, and says why, when Redis does not answer the layout's lookup.
func TestNewNeedsRedis(t *testing.T) {
	t.Parallel()
	b := newFakeBackend(t)
	client, err := b.fake.Server().NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	b.fake.Server().SetError("LOADING")
	defer b.fake.Server().SetError("")
	_, err = synckairos.New(client, &synckairos.Config{KeyPrefix: b.prefix + "down:", CallTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "layout") {
		t.Fatalf("New with Redis refusing: %v", err)
	}
}
