package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The example runs as its doc says: on the embedded Redis, with Postgres.
func TestAuditExample(t *testing.T) {
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
	t.Setenv("SYNCKAIROS_REDIS_URL", "")
	if err := run(ctx, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
