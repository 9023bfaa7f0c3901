package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/synckairos/synckairos/internal/testenv"
)

// The example runs as its doc says: on the embedded Redis, with Postgres.
func TestAuditExample(t *testing.T) {
	runExample(t, "")
}

// The example on a Redis Cluster, pointed at by SYNCKAIROS_REDIS_URL.
func TestAuditExampleOnCluster(t *testing.T) {
	runExample(t, testenv.StartCluster(t).URL())
}

func runExample(t *testing.T, redisURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := os.Getenv("SYNCKAIROS_DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("SYNCKAIROS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Postgres is required: %v", err)
		}
		t.Skipf("no Postgres: %v", err)
	}
	conn.Close(ctx)
	t.Setenv("SYNCKAIROS_REDIS_URL", redisURL)
	if err := run(ctx, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
