package synckairos_test

import (
	"time"

	"github.com/synckairos/synckairos/synckairostest"
)

func synckairostestEpoch() time.Time { return synckairostest.Epoch }
