package audit_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/synckairos/synckairos/internal/testenv"
	"go.uber.org/goleak"
)

// The tests mostly wait on Redis, Postgres and River's clocks: up to eight
// run at once (the default is GOMAXPROCS). After them all, no goroutine is
// left: every cluster, Manager, River client and pool a test opened was
// closed by its cleanup.
func TestMain(m *testing.M) {
	testenv.RaiseParallel(8)
	code := m.Run()
	if code == 0 {
		// rueidis's cluster client leaves a goroutine sleeping out a
		// topology refresh backoff, or a delayed refresh, after Close; it
		// ends by itself.
		if err := testenv.Leaks(5*time.Second, goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
			goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
