package pubsub

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"
)

// Sub is one local subscription: a bounded queue and the goroutine that
// drains it into the subscriber's callback, one message at a time, in the
// order Redis delivered them.
type Sub struct {
	hub    *Hub
	topics []Topic // guarded by hub.mu

	deliver  func(rueidis.PubSubMessage)
	onResync func()

	// down holds the runs of this subscription whose connection is lost
	// (guarded by hub.mu): a failover takes several shards' connections at
	// once, and the subscriber is told once, when all are back.
	down map[*run]struct{}

	queue    chan rueidis.PubSubMessage
	resync   atomic.Bool   // the backlog is to be dropped for one resync
	wake     chan struct{} // cap 1: resync set
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// NewSub returns a subscription of h that queues up to buffer messages for
// deliver; onResync is called instead of the messages it lost.
func (h *Hub) NewSub(buffer int, deliver func(rueidis.PubSubMessage), onResync func()) *Sub {
	return &Sub{
		hub:      h,
		deliver:  deliver,
		onResync: onResync,
		queue:    make(chan rueidis.PubSubMessage, buffer),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// offer queues m without ever waiting: a full queue turns into a resync.
func (s *Sub) offer(m rueidis.PubSubMessage) {
	if s.resync.Load() {
		s.hub.drops.Add(1) // the backlog is being dropped anyway
		return
	}
	select {
	case s.queue <- m:
	default:
		s.hub.drops.Add(1)
		s.markResync()
	}
}

func (s *Sub) markResync() {
	s.resync.Store(true)
	notify(s.wake)
}

// holdResync records that run r lost its connection. It holds hub.mu.
func (s *Sub) holdResync(r *run) {
	if s.down == nil {
		s.down = make(map[*run]struct{})
	}
	s.down[r] = struct{}{}
}

// releaseResync records that run r subscribed again; when no run of the
// subscription is down any more, the subscriber gets one resync. It holds
// hub.mu.
func (s *Sub) releaseResync(r *run) {
	if _, ok := s.down[r]; !ok {
		return // subscribed on it since the loss: nothing lost
	}
	delete(s.down, r)
	if len(s.down) == 0 {
		s.markResync()
	}
}

// Run delivers messages until ctx is done or Close is called, then removes
// the subscription from its hub. Start it before Hub.Subscribe.
func (s *Sub) Run(ctx context.Context) {
	defer close(s.done)
	defer s.hub.Remove(s)
	for {
		if s.stopping(ctx) {
			return
		}
		if s.resync.Load() {
			s.drain()
			s.resync.Store(false)
			s.hub.resyncs.Add(1)
			s.onResync()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-s.wake:
		case m := <-s.queue:
			if !s.resync.Load() && !s.stopping(ctx) {
				s.deliver(m)
			} else {
				s.hub.drops.Add(1)
			}
		}
	}
}

func (s *Sub) stopping(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *Sub) drain() {
	for {
		select {
		case <-s.queue:
			s.hub.drops.Add(1)
		default:
			return
		}
	}
}

// Close ends the subscription and waits until its goroutine has returned,
// after the callback running, if any. It must not be called from the
// callback itself.
func (s *Sub) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Done is closed when the subscription has ended.
func (s *Sub) Done() <-chan struct{} { return s.done }
