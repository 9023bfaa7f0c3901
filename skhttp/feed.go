package skhttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/synckairos/synckairos"
)

// Feed is one watcher's events of a session for a transport of the host's
// choosing (a WebSocket, a long poll): the events Stream sends, without
// their Server-Sent Events framing. Next gives the current view first,
// then one view per change, a fresh view after the watcher missed changes,
// and a "deleted" event, after which it returns io.EOF.
//
// A Feed is for one goroutine at a time. Like Stream's watchers, many Feeds
// of many sessions share the Manager's one subscription.
type Feed struct {
	m        *synckairos.Manager
	id       string
	watch    *synckairos.Watch
	pending  *synckairos.State // to be sent: the first state, or one whose view failed
	resync   bool              // changes were missed: read the session again
	ended    bool
	sent     int64 // the version the watcher has
	sentLife int64 // and its life; -1 when unknown (resuming)
}

// FeedEvent is an event of a Feed; its JSON, {"event": "view", "id": "7",
// "data": {…the view…}}, is what clock.js reads from a WebSocket.
type FeedEvent struct {
	// Event is "view" or "deleted".
	Event string `json:"event"`
	// ID is the view's version, what a watcher resuming elsewhere passes
	// to OpenFeed (or Stream's Last-Event-ID); "" for "deleted".
	ID string `json:"id,omitempty"`
	// View is the session's view at the server's time; nil for "deleted".
	View *synckairos.View `json:"data,omitempty"`
}

// The events of a Feed.
const (
	EventView    = "view"
	EventDeleted = "deleted"
)

// OpenFeed starts watching a session for one watcher. lastEventID is the
// ID of the last event the watcher had ("" for none): a watcher resuming,
// on this instance or another, does not get the view it has again. ctx
// bounds the opening only; the Feed lasts until Close, or until the
// Manager closes. An unknown session gives synckairos.ErrSessionNotFound.
// buffer bounds the changes held for a watcher that falls behind (0:
// synckairos.DefaultWatchBuffer); beyond, it gets one fresh view.
func OpenFeed(ctx context.Context, m *synckairos.Manager, sessionID, lastEventID string, buffer int) (*Feed, error) {
	// Watch first, then read: no change falls in between.
	watch, err := m.WatchSession(context.WithoutCancel(ctx), sessionID, buffer)
	if err != nil {
		return nil, err
	}
	s, err := m.GetSession(ctx, sessionID)
	if err != nil {
		watch.Close()
		return nil, err
	}
	sent, _ := strconv.ParseInt(lastEventID, 10, 64)
	return &Feed{m: m, id: sessionID, watch: watch, pending: s, sent: sent, sentLife: -1}, nil
}

// Next returns the next event, waiting for a change until ctx ends. After
// an error other than io.EOF (ctx's, or the Manager's), Next may be called
// again: nothing is lost.
func (f *Feed) Next(ctx context.Context) (FeedEvent, error) {
	ev, _, err := f.next(ctx, true)
	return ev, err
}

// Close stops the Feed.
func (f *Feed) Close() { f.watch.Close() }

// next returns the next event; when wait is false, ok is false if there is
// none yet.
func (f *Feed) next(ctx context.Context, wait bool) (ev FeedEvent, ok bool, err error) {
	for {
		if f.ended {
			return FeedEvent{}, false, io.EOF
		}
		switch {
		case f.pending != nil:
		case f.resync:
			s, err := f.m.GetSession(ctx, f.id)
			if errors.Is(err, synckairos.ErrSessionNotFound) {
				f.ended = true
				return FeedEvent{Event: EventDeleted}, true, nil
			}
			if err != nil {
				return FeedEvent{}, false, err
			}
			f.pending, f.resync = s, false
		default:
			var we synckairos.WatchEvent
			if wait {
				we, err = f.watch.Next(ctx)
			} else {
				var got bool
				we, got, err = f.watch.TryNext()
				if err == nil && !got {
					return FeedEvent{}, false, nil
				}
			}
			switch {
			case err != nil:
				return FeedEvent{}, false, err
			case we.Resync:
				f.resync = true
				continue
			case we.Deleted:
				f.ended = true
				return FeedEvent{Event: EventDeleted}, true, nil
			}
			f.pending = we.State
		}
		s := f.pending
		if s.Version == f.sent && (f.sentLife < 0 || s.Life == f.sentLife) || s.Life == f.sentLife && s.Version < f.sent {
			f.pending = nil // the watcher has it, or a newer one
			continue
		}
		now, err := f.m.Now(ctx)
		if err != nil {
			return FeedEvent{}, false, err
		}
		f.pending = nil
		f.sent, f.sentLife = s.Version, s.Life
		return FeedEvent{Event: EventView, ID: strconv.FormatInt(s.Version, 10), View: s.ViewAt(now)}, true, nil
	}
}

// sse frames ev as a Server-Sent Event.
func sse(ev FeedEvent) ([]byte, error) {
	if ev.Event == EventDeleted {
		return []byte("event: deleted\ndata: {}\n\n"), nil
	}
	b, err := json.Marshal(ev.View)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+40)
	out = append(out, "id: "...)
	out = append(out, ev.ID...)
	out = append(out, "\nevent: view\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...), nil
}
