// Package skhttp serves synckairos sessions to browsers: a Server-Sent
// Events stream of a session's view, a time endpoint for clock offset
// estimation, a mapping of the Manager's errors to HTTP statuses for the
// host's own command endpoints, and a small JavaScript clock (clock.js)
// that shows the right time from them. Mount the handlers in any router:
//
//	mux.Handle("GET /games/{id}/clock", skhttp.Stream(m, nil))
//	mux.Handle("GET /time", skhttp.Time(m))
//	mux.Handle("GET /clock.js", skhttp.Script())
//
// Commands (start, move, pause) stay the host's: a few lines each, with
// WriteError for their failures. For another transport (a WebSocket),
// OpenFeed gives one watcher the events the stream sends, without their
// framing; clock.js reads them from ws:// URLs (examples/gameserver/websocket).
package skhttp

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/synckairos/synckairos"
)

// The defaults of StreamOptions.
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

// StreamOptions configure Stream. The zero value, and nil, give the
// defaults.
type StreamOptions struct {
	// SessionID reads the session's ID from the request; by default the
	// path value "id" (a pattern such as "GET /games/{id}/clock"), else
	// the query parameter "session".
	SessionID func(r *http.Request) string
	// Authorize, when set, decides whether the request may watch the
	// session: an error refuses it with 403 Forbidden.
	Authorize func(r *http.Request, sessionID string) error
	// Heartbeat is how often a comment line keeps an idle stream open
	// through proxies. Defaults to DefaultHeartbeat.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a watcher: one that does not read
	// is cut, without slowing the others. Defaults to DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Buffer bounds the changes held for a watcher that falls behind;
	// beyond, it gets one fresh view. Defaults to
	// synckairos.DefaultWatchBuffer.
	Buffer int
}

// Stream returns a handler streaming a session's view as Server-Sent
// Events: "view" events whose data is the session's synckairos.View (JSON)
// and whose id is "life/version" (State.Life and Version), the current view first, then one per change,
// and a fresh view after the watcher missed changes. A client resuming with
// Last-Event-ID (or the query parameter last_event_id, for a client that
// reconnects to another instance) does not get the view it has again. A
// deletion is a "deleted" event, after which the stream ends. An unknown
// session gives 404, a refused one 403.
//
// An HTTP/1.x stream leaves net/http once its headers and first view are
// written (http.ResponseController.Hijack), and a shared pool of goroutines
// writes the watchers' events: a watcher waiting costs a few KiB and one
// goroutine blocked reading its connection, which sees the client go. Such
// streams end with the Manager, the client, or StreamHandler.Close (not
// with http.Server.Close). Over HTTP/2 a stream runs in its handler.
func Stream(m *synckairos.Manager, opts *StreamOptions) *StreamHandler {
	var o StreamOptions
	if opts != nil {
		o = *opts
	}
	if o.SessionID == nil {
		o.SessionID = func(r *http.Request) string {
			if id := r.PathValue("id"); id != "" {
				return id
			}
			return r.URL.Query().Get("session")
		}
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	st := &stream{m: m, o: o}
	st.fleet.h = st
	return &StreamHandler{st}
}

// StreamHandler is the handler Stream returns.
type StreamHandler struct{ s *stream }

// ServeHTTP serves one watcher's stream.
func (h *StreamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.s.ServeHTTP(w, r) }

// Close ends every stream the handler took out of net/http (an HTTP/1.x
// stream, once its headers are written): http.Server.Close and Shutdown
// no longer see them. Call it as the server shuts down, for instance from
// http.Server.RegisterOnShutdown; the streams end with the Manager too.
// Streams that start afterwards are served as before.
func (h *StreamHandler) Close() { h.s.fleet.closeAll() }

type stream struct {
	m     *synckairos.Manager
	o     StreamOptions
	fleet fleet // the hijacked streams
}

func (h *stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := h.o.SessionID(r)
	if id == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_input", "no session ID", nil)
		return
	}
	if h.o.Authorize != nil {
		if err := h.o.Authorize(r, id); err != nil {
			writeJSONError(w, http.StatusForbidden, "forbidden", err.Error(), nil)
			return
		}
	}
	// Resuming: the browser's own reconnect sends Last-Event-ID; clock.js,
	// moving to another instance, the query parameter last_event_id.
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	feed, err := OpenFeed(ctx, h.m, id, last, h.o.Buffer)
	if err != nil {
		WriteError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	if r.ProtoMajor == 1 && h.hijack(rc, w.Header(), feed) {
		return
	}
	defer feed.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if err := h.write(rc, w, nil); err != nil { // the headers, at once
		return
	}
	for {
		next, cancel := context.WithTimeout(ctx, h.o.Heartbeat)
		ev, err := feed.Next(next)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if h.write(rc, w, []byte(": ping\n\n")) != nil {
				return
			}
			continue
		case err != nil:
			return
		}
		b, err := sse(ev)
		if err != nil || h.write(rc, w, b) != nil || ev.Event == EventDeleted {
			return
		}
	}
}

// hijack takes an HTTP/1.x stream out of net/http once its headers and
// first view are written, and hands it to the fleet; false when the
// connection cannot be taken (the stream then goes on in this handler).
func (h *stream) hijack(rc *http.ResponseController, hdr http.Header, feed *Feed) bool {
	conn, brw, err := rc.Hijack()
	if err != nil {
		return false
	}
	wr := &watcher{f: &h.fleet, conn: conn, feed: feed}
	// The head as net/http would write it: ours over the host's (such as
	// Access-Control-Allow-Origin), values cleaned, invalid names left out.
	head := http.Header{}
	for k, vs := range hdr {
		if validHeaderName(k) {
			head[k] = vs
		}
	}
	head.Set("Content-Type", "text/event-stream")
	head.Set("Cache-Control", "no-cache")
	head.Set("X-Accel-Buffering", "no")
	head.Set("Connection", "close")
	head.Del("Content-Length")
	head.Del("Transfer-Encoding")
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n")
	_ = head.Write(&b)
	b.WriteString("\r\n")
	if brw.Reader.Buffered() > 0 || wr.put([]byte(b.String())) != nil || !wr.drain() {
		// (Bytes after the request: a body or a pipelined request, which a
		// stream does not read.)
		conn.Close()
		feed.Close()
		return true
	}
	h.fleet.add(wr)
	return true
}

// validHeaderName reports whether name is an HTTP token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// write writes and flushes within the write timeout.
func (h *stream) write(rc *http.ResponseController, w http.ResponseWriter, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
	if len(b) > 0 {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return rc.Flush()
}

// Time returns a handler for clock offset estimation: GET answers
// {"received_ms": …, "sent_ms": …}, the server time (Manager.Now, the
// Redis clock every instance shares) at which the request was received and
// the answer sent, in Unix milliseconds. A client takes several samples and
// keeps the one with the smallest round trip: offset = ((received − t0) +
// (sent − t1)) / 2, t0 and t1 its own send and receive times.
func Time(m *synckairos.Manager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received, err := m.Now(r.Context())
		if err != nil {
			WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		sent, err := m.Now(r.Context())
		if err != nil {
			sent = received
		}
		fmt.Fprintf(w, `{"received_ms":%d,"sent_ms":%d}`, received.UnixMilli(), sent.UnixMilli())
	})
}

//go:embed clock.js
var clockJS []byte

// Script returns a handler serving clock.js, the JavaScript clock: one
// dependency-free ES module (see its header, and clock.d.ts).
func Script() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(clockJS)
	})
}

// ClockJS returns the source of clock.js, for hosts that bundle it.
func ClockJS() []byte { return append([]byte(nil), clockJS...) }

// Error codes of WriteError's JSON body.
const (
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeNotYourTurn  = "not_your_turn"
	CodeDuplicate    = "duplicate_move"
	CodeFinished     = "finished"
	CodeInvalidState = "invalid_transition"
	CodeInvalidInput = "invalid_input"
	CodeUnavailable  = "unavailable"
	CodeExists       = "exists"
	CodeInternal     = "internal"
)

// StatusOf returns the HTTP status and the error code of an error of the
// Manager:
//
//	ErrSessionNotFound                     404 not_found
//	ErrSessionExists                       409 exists
//	*ConflictError (ErrVersionConflict)    409 conflict
//	ErrNotActive                           409 not_your_turn
//	ErrTurnEnded                           409 duplicate_move
//	ErrInvalidTransition, session finished 409 finished
//	ErrInvalidTransition, other            409 invalid_transition
//	ErrInvalidState, ErrParticipantNotFound 400 invalid_input
//	ErrUnavailable, ErrNotReplicated       503 unavailable
//	anything else                          500 internal
func StatusOf(err error) (int, string) {
	var te *synckairos.TransitionError
	switch {
	case errors.Is(err, synckairos.ErrSessionNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, synckairos.ErrSessionExists):
		return http.StatusConflict, CodeExists
	case errors.Is(err, synckairos.ErrVersionConflict):
		return http.StatusConflict, CodeConflict
	case errors.Is(err, synckairos.ErrTurnEnded):
		return http.StatusConflict, CodeDuplicate
	case errors.Is(err, synckairos.ErrNotActive):
		return http.StatusConflict, CodeNotYourTurn
	case errors.As(err, &te):
		if finished(te.Status) {
			return http.StatusConflict, CodeFinished
		}
		return http.StatusConflict, CodeInvalidState
	case errors.Is(err, synckairos.ErrInvalidState), errors.Is(err, synckairos.ErrParticipantNotFound):
		return http.StatusBadRequest, CodeInvalidInput
	case errors.Is(err, synckairos.ErrUnavailable), errors.Is(err, synckairos.ErrNotReplicated):
		return http.StatusServiceUnavailable, CodeUnavailable
	}
	return http.StatusInternalServerError, CodeInternal
}

func finished(s synckairos.Status) bool {
	return s == synckairos.StatusExpired || s == synckairos.StatusCompleted || s == synckairos.StatusCancelled
}

// WriteError writes err as StatusOf maps it, with the JSON body
// {"error": code, "message": …, "view": …}: the session's current view
// when the error carries its state (a refused move), so that the client
// snaps to it without another request. An internal error's message is not
// shown.
func WriteError(w http.ResponseWriter, err error) {
	status, code := StatusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = http.StatusText(status)
	}
	var current *synckairos.State
	var te *synckairos.TransitionError
	var ue *synckairos.TurnError
	switch {
	case errors.As(err, &te):
		current = te.Current
	case errors.As(err, &ue):
		current = ue.Current
	}
	var view *synckairos.View
	if current != nil {
		view = current.ViewAt(time.Now()) // close enough for a refusal; the stream corrects it
	}
	writeJSONError(w, status, code, msg, view)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string, view *synckairos.View) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error   string           `json:"error"`
		Message string           `json:"message"`
		View    *synckairos.View `json:"view,omitempty"`
	}{code, msg, view})
}
