package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The histogram's quantiles stay within 2% of the exact ones, over a spread
// of nanoseconds to seconds.
func TestHistQuantiles(t *testing.T) {
	var h Hist
	var all []time.Duration
	for range 100000 {
		d := time.Duration(rand.ExpFloat64() * float64(200*time.Microsecond))
		if rand.IntN(100) == 0 {
			d = time.Duration(rand.Int64N(int64(2 * time.Second)))
		}
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)-1))]
		got := h.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.02 || diff < -0.02 {
			t.Errorf("q%v: %v, exact %v (%.1f%%)", q, got, exact, 100*diff)
		}
	}
	if h.Max() != all[len(all)-1] || h.Count() != uint64(len(all)) {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	for v := int64(0); v < 1<<40; v = v*3/2 + 1 {
		if lo := lowest(bucket(v)); lo > v || lowest(bucket(v)+1) <= v {
			t.Fatalf("value %d: bucket %d spans [%d, %d)", v, bucket(v), lo, lowest(bucket(v)+1))
		}
	}
}
