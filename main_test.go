package synckairos_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Manager, client and fake a test opens is closed by its cleanup: no
// goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
