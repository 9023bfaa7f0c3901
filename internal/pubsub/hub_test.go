package pubsub

import (
	"testing"
)

// fixture is a run of two topics, a on the lost connection (generation 1)
// and b subscribed while the next one (generation 2) is set up, each with a
// subscriber of its own.
func fixture() (r *run, a, b *topic, s1, s2 *Sub) {
	h := &Hub{runs: map[string]*run{}}
	r = &run{hub: h, topics: map[topicKey]*topic{}, gen: 1, wake: make(chan struct{}, 1)}
	newSub := func() *Sub { return &Sub{hub: h, wake: make(chan struct{}, 1)} }
	s1, s2 = newSub(), newSub()
	a = &topic{subs: map[*Sub]struct{}{s1: {}}, confirmed: 1}
	r.topics[topicKey{Channel, "a"}] = a
	r.holdResyncs() // the connection of generation 1 is lost
	r.gen = 2
	b = &topic{subs: map[*Sub]struct{}{s2: {}}}
	r.topics[topicKey{Channel, "b"}] = b
	return r, a, b, s1, s2
}

// The subscriber of a lost connection gets its resync once every topic of
// the run is confirmed on the new one, whichever comes last (the new
// topic's first confirmation included); the new topic's subscriber, which
// lost nothing, gets none.
func TestResyncOnceTheRunIsBack(t *testing.T) {
	for _, order := range []string{"old first", "new first"} {
		r, a, b, s1, s2 := fixture()
		first, second := a, b
		if order == "new first" {
			first, second = b, a
		}
		first.confirmed = 2
		r.releaseIfBack()
		if s1.resync.Load() {
			t.Fatalf("%s: resync before every topic was back", order)
		}
		second.confirmed = 2
		r.releaseIfBack()
		if !s1.resync.Load() || s2.resync.Load() || len(s1.down) != 0 || r.held {
			t.Fatalf("%s: resyncs %v %v, still down %d, held %v", order, s1.resync.Load(), s2.resync.Load(), len(s1.down), r.held)
		}
	}
}

// A topic removed while its run is held is waited for no longer.
func TestResyncWhenTheAwaitedTopicGoes(t *testing.T) {
	r, a, b, s1, s2 := fixture()
	a.confirmed = 2
	r.releaseIfBack()
	delete(r.topics, topicKey{Channel, "b"}) // as Remove does, b never confirmed
	_ = b
	r.releaseIfBack()
	if !s1.resync.Load() || s2.resync.Load() {
		t.Fatalf("resyncs %v %v after the awaited topic went", s1.resync.Load(), s2.resync.Load())
	}
}

// A subscriber held by two runs gets its resync when both are back.
func TestResyncOnceForTwoRuns(t *testing.T) {
	r1, a1, _, s, _ := fixture()
	r2 := &run{hub: r1.hub, topics: map[topicKey]*topic{}, gen: 1}
	a2 := &topic{subs: map[*Sub]struct{}{s: {}}, confirmed: 1}
	r2.topics[topicKey{Sharded, "x"}] = a2
	r2.holdResyncs()
	r2.gen = 2
	delete(r1.topics, topicKey{Channel, "b"})
	a1.confirmed = 2
	r1.releaseIfBack()
	if s.resync.Load() {
		t.Fatal("resync while another run is still down")
	}
	a2.confirmed = 2
	r2.releaseIfBack()
	if !s.resync.Load() || len(s.down) != 0 {
		t.Fatalf("resync %v, still down %d", s.resync.Load(), len(s.down))
	}
}
