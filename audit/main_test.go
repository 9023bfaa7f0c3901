package audit_test

import (
	"os"
	"testing"

	"github.com/synckairos/synckairos/internal/testenv"
)

// The tests mostly wait on Redis, Postgres and River's clocks: up to eight
// run at once (the default is GOMAXPROCS).
func TestMain(m *testing.M) {
	testenv.RaiseParallel(8)
	os.Exit(m.Run())
}
