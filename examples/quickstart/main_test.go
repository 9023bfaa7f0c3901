package main

import (
	"context"
	"testing"
)

// The quickstart runs as the README says, on the embedded default.
func TestQuickstart(t *testing.T) {
	t.Setenv("SYNCKAIROS_REDIS_URL", "")
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
