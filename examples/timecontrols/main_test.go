package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestTimecontrols(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"black thinks  9s: main time 1s, then 3 × 10s",
		"black thinks  8s: byo-yomi, 3 periods of 10s left", // 7 s into the first period: kept
		"black thinks 14s: byo-yomi, 2 periods of 10s left", // one overrun
		// 85 s of play, then the 2 periods left: 12:00:00 + 105 s
		"flag: black ran out of its last period at 12:01:45.000 (session_expired, 2 periods used)",
		"accepted, 150 ms compensated, 50ms left",
		"no compensation: the same move is refused: session_expired",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
