package skhttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

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
	// ID names the view: "life/version" (the session's State.Life and
	// Version), what a watcher resuming elsewhere passes to OpenFeed (or
	// Stream's Last-Event-ID); "" for "deleted".
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
// ID of the last event the watcher had ("" for none; a bare version is
// taken too): a watcher resuming, on this instance or another, does not
// get the view it has again, nor an older one. ctx bounds the opening only;
// the Feed lasts until Close, or until the Manager closes. An unknown
// session gives synckairos.ErrSessionNotFound, unless the watcher resumes:
// then the session was deleted while it was away, and the Feed's one event
// is "deleted".
// buffer bounds the changes held for a watcher that falls behind (0:
// synckairos.DefaultWatchBuffer); beyond, it gets one fresh view.
func OpenFeed(ctx context.Context, m *synckairos.Manager, sessionID, lastEventID string, buffer int) (*Feed, error) {
	// Watch first, then read: no change falls in between.
	watch, err := m.WatchSession(context.WithoutCancel(ctx), sessionID, buffer)
	if err != nil {
		return nil, err
	}
	f := &Feed{m: m, id: sessionID, watch: watch, sentLife: -1}
	f.sentLife, f.sent = parseEventID(lastEventID)
	f.pending, err = m.GetSession(ctx, sessionID)
	if errors.Is(err, synckairos.ErrSessionNotFound) && lastEventID != "" {
		f.resync = true // read again, which says it is gone
		return f, nil
	}
	if err != nil {
		watch.Close()
		return nil, err
	}
	return f, nil
}

// eventID returns the ID of a view of s: "life/version".
func eventID(s *synckairos.State) string {
	return strconv.FormatInt(s.Life, 10) + "/" + strconv.FormatInt(s.Version, 10)
}

// parseEventID reads an event ID: "life/version", or a bare version (the
// life unknown: -1). Anything else is no ID.
func parseEventID(id string) (life, version int64) {
	l, v, ok := strings.Cut(id, "/")
	if !ok {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return -1, 0
		}
		return -1, n
	}
	life, err1 := strconv.ParseInt(l, 10, 64)
	version, err2 := strconv.ParseInt(v, 10, 64)
	if err1 != nil || err2 != nil {
		return -1, 0
	}
	return life, version
}

// has reports whether the watcher has the view of (life, version), or a
// newer one; an unknown life (a resume by bare version) is learnt from
// the version the watcher has.
func (f *Feed) has(life, version int64) bool {
	if f.sentLife < 0 {
		if version == f.sent && f.sent > 0 {
			f.sentLife = life
			return true
		}
		return false
	}
	return life < f.sentLife || life == f.sentLife && version <= f.sent
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
				if f.sentLife >= 0 && we.Life < f.sentLife {
					continue // of an earlier life than the watcher's
				}
				f.ended = true
				return FeedEvent{Event: EventDeleted}, true, nil
			}
			f.pending = we.State
		}
		s := f.pending
		if f.has(s.Life, s.Version) {
			f.pending = nil // the watcher has it, or a newer one
			continue
		}
		now, err := f.m.Now(ctx)
		if err != nil {
			return FeedEvent{}, false, err
		}
		f.pending = nil
		f.sent, f.sentLife = s.Version, s.Life
		return FeedEvent{Event: EventView, ID: eventID(s), View: s.ViewAt(now)}, true, nil
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
