package main

import (
	"context"
	"testing"

	"github.com/synckairos/synckairos/internal/testenv"
)

// The quickstart runs as the README says, on the embedded default.
func TestQuickstart(t *testing.T) {
	t.Setenv("SYNCKAIROS_REDIS_URL", "")
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The quickstart on a Redis Cluster, pointed at by SYNCKAIROS_REDIS_URL.
func TestQuickstartOnCluster(t *testing.T) {
	t.Setenv("SYNCKAIROS_REDIS_URL", testenv.StartCluster(t).URL())
	if err := run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
