package audit_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/synckairos/synckairos/internal/testenv"
)

// The tests mostly wait on Redis, Postgres and River's clocks: up to eight
// run at once (the default is GOMAXPROCS). After them all, no goroutine is
// left: every cluster, Manager, River client and pool a test opened was
// closed by its cleanup.
func TestMain(m *testing.M) {
	testenv.RaiseParallel(8)
	code := m.Run()
	if code == 0 {
		if err := testenv.Leaks(5*time.Second, testenv.RueidisLeftovers()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
