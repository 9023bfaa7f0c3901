package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/synckairos/synckairos/internal/testenv"
)

func TestChessclock(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"1. e4       2s   white 3:00   black 3:00", // 3:00 - 2s + 2s
		// white: 3:00 -2 -4 -5 -3 -8 s, +2 s a move; black: -3 -6 -2 -21 -47 s, +2 s a move
		"5... a6    47s   white 2:48   black 1:51",
		// 121 s of play, then black's 111 s: 12:00:00 + 232 s; versions: create,
		// start, 11 moves, the expiry
		"flag: black ran out at 12:03:52.000; the game is expired (version 14)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// The same game on a Redis Cluster, pointed at by SYNCKAIROS_REDIS_URL.
func TestChessclockOnCluster(t *testing.T) {
	t.Setenv("SYNCKAIROS_REDIS_URL", testenv.StartCluster(t).URL())
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if want := "flag: black ran out at 12:03:52.000; the game is expired (version 14)"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}
