package rediscluster

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/redis/rueidis"
)

func TestStart(t *testing.T) {
	c, err := Start(context.Background(), 3)
	if errors.Is(err, ErrNoBinaries) && os.Getenv("SYNCKAIROS_REQUIRE_SERVICES") != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	opt, err := rueidis.ParseURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if n := len(client.Nodes()); n < 3 {
		t.Fatalf("client sees %d nodes, want the 3 masters at least", n)
	}
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := client.Do(ctx, client.B().Set().Key(k).Value(k).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
}
