package skhttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/skhttp"
	"github.com/synckairos/synckairos/synckairostest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server serves a fake Manager's stream, time and script.
func server(t *testing.T, opts *skhttp.StreamOptions) (*synckairos.Manager, *httptest.Server) {
	t.Helper()
	m, _ := synckairostest.NewManager(t, nil)
	mux := http.NewServeMux()
	mux.Handle("GET /games/{id}/clock", skhttp.Stream(m, opts))
	mux.Handle("GET /time", skhttp.Time(m))
	mux.Handle("GET /clock.js", skhttp.Script())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return m, srv
}

type event struct {
	id, name, data string
}

// events reads a response's Server-Sent Events.
func events(t *testing.T, body io.Reader) <-chan event {
	ch := make(chan event, 1024) // the reader keeps reading while the test writes
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan event) event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return event{}
}

func open(t *testing.T, url string, header http.Header) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	return res, cancel
}

// version returns the version of an event ID ("life/version").
func version(id string) string {
	_, v, _ := strings.Cut(id, "/")
	return v
}

func players() []synckairos.Participant {
	return []synckairos.Participant{{ID: "white", TotalTime: time.Minute}, {ID: "black", TotalTime: time.Minute}}
}

// The stream: the current view first, then one per change, with the
// version as the event ID; a resumed stream skips the view the client has;
// a deletion ends it.
func TestStream(t *testing.T) {
	t.Parallel()
	m, srv := server(t, nil)
	ctx := context.Background()
	if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: "g1", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
		t.Fatal(err)
	}
	res, _ := open(t, srv.URL+"/games/g1/clock", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	ch := events(t, res.Body)
	ev := next(t, ch)
	var v synckairos.View
	if ev.name != "view" || version(ev.id) != "1" || json.Unmarshal([]byte(ev.data), &v) != nil || v.Status != synckairos.StatusPending {
		t.Fatalf("first event: %+v", ev)
	}
	if _, err := m.StartSession(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	ev = next(t, ch)
	var got map[string]any
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || version(ev.id) != "2" || got["status"] != "running" ||
		got["participants"].([]any)[0].(map[string]any)["running"] != true {
		t.Fatalf("after the start: %+v", ev)
	}
	// Resuming at version 2 skips it; the next change comes.
	res2, _ := open(t, srv.URL+"/games/g1/clock", http.Header{"Last-Event-Id": {"2"}})
	ch2 := events(t, res2.Body)
	if _, err := m.SwitchCycle(ctx, "g1", nil); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch2); version(ev.id) != "3" {
		t.Fatalf("resumed: %+v", ev)
	}
	if ev := next(t, ch); version(ev.id) != "3" {
		t.Fatalf("first stream: %+v", ev)
	}
	if err := m.DeleteSession(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.name != "deleted" {
		t.Fatalf("after the delete: %+v", ev)
	}
	if _, ok := <-ch; ok {
		t.Fatal("the stream goes on after the delete")
	}
}

// Unknown sessions give 404, refused watchers 403, a missing ID 400.
func TestStreamRefusals(t *testing.T) {
	t.Parallel()
	m, srv := server(t, &skhttp.StreamOptions{Authorize: func(r *http.Request, id string) error {
		if r.Header.Get("Authorization") != "Bearer ok" {
			return errors.New("not a player of " + id)
		}
		return nil
	}})
	if _, err := m.CreateSession(context.Background(), &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, auth string
		status     int
		code       string
	}{
		{"/games/nope/clock", "Bearer ok", 404, "not_found"},
		{"/games/g/clock", "", 403, "forbidden"},
		{"/games/g/clock", "Bearer no", 403, "forbidden"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		req.Header.Set("Authorization", c.auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error, Message string }
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != c.status || body.Error != c.code {
			t.Errorf("%s (%q): %d %+v, want %d %s", c.path, c.auth, res.StatusCode, body, c.status, c.code)
		}
	}
}

// A watcher that never reads is cut once a write takes longer than the
// write timeout; another watcher of the session gets every change meanwhile.
func TestStreamCutsAWatcherThatNeverReads(t *testing.T) {
	t.Parallel()
	m, srv := server(t, &skhttp.StreamOptions{WriteTimeout: 200 * time.Millisecond, Buffer: 1 << 10})
	ctx := context.Background()
	big := json.RawMessage(`"` + strings.Repeat("x", 60<<10) + `"`)
	if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players(), Data: big}); err != nil {
		t.Fatal(err)
	}
	// The stalled watcher: a raw connection that sends its request and
	// never reads.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /games/g/clock HTTP/1.1\r\nHost: x\r\n\r\n")
	res, _ := open(t, srv.URL+"/games/g/clock", nil)
	ch := events(t, res.Body)
	next(t, ch)
	start := time.Now()
	const changes = 200 // 12 MB for the stalled one: more than the socket buffers
	for i := range changes {
		if _, err := m.MutateSession(ctx, "g", func(s *synckairos.State) error {
			s.Metadata = map[string]string{"n": fmt.Sprint(i)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for want := 2; want <= changes+1; want++ {
		if ev := next(t, ch); version(ev.id) != fmt.Sprint(want) {
			t.Fatalf("the reading watcher got version %s, want %d", ev.id, want)
		}
	}
	t.Logf("the reading watcher had all %d changes in %v", changes, time.Since(start))
	// The stalled connection was cut: reading it now ends, short of 12 MB.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if err != nil {
		t.Fatalf("the stalled watcher was not cut: %v after %d bytes", err, n)
	}
	if n >= changes*60<<10 {
		t.Fatalf("the stalled watcher got everything (%d bytes)", n)
	}
}

// The time endpoint gives the server's receive and send times; the script
// is the clock module.
func TestTimeAndScript(t *testing.T) {
	t.Parallel()
	m, srv := server(t, nil)
	res, err := http.Get(srv.URL + "/time")
	if err != nil {
		t.Fatal(err)
	}
	var tm struct{ ReceivedMs, SentMs int64 }
	var raw map[string]int64
	json.NewDecoder(res.Body).Decode(&raw)
	res.Body.Close()
	tm.ReceivedMs, tm.SentMs = raw["received_ms"], raw["sent_ms"]
	now, _ := m.Now(context.Background())
	if tm.ReceivedMs == 0 || tm.SentMs < tm.ReceivedMs || now.UnixMilli() < tm.SentMs {
		t.Fatalf("time: %+v (now %d)", raw, now.UnixMilli())
	}
	res, err = http.Get(srv.URL + "/clock.js")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(string(b), "export class Clock") {
		t.Fatalf("script: %s, %.60q", res.Header.Get("Content-Type"), b)
	}
}

// Each error of the Manager maps to its status and code, with the current
// view when the error carries the state.
func TestWriteError(t *testing.T) {
	t.Parallel()
	m, _ := synckairostest.NewManager(t, nil)
	ctx := context.Background()
	m.CreateSession(ctx, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()})
	m.StartSession(ctx, "g")
	_, notYours := m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "black"})
	var dup error
	m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "white", Turn: 1})
	_, dup = m.SwitchCycle(ctx, "g", &synckairos.SwitchOptions{From: "white", Turn: 1})
	m.CompleteSession(ctx, "g")
	_, finished := m.PauseSession(ctx, "g")
	_, missing := m.GetSession(ctx, "nope")
	_, exists := m.CreateSession(ctx, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()})
	_, invalid := m.CreateSession(ctx, &synckairos.State{SessionID: "", Mode: synckairos.ModePerParticipant, Participants: players()})
	for _, c := range []struct {
		err    error
		status int
		code   string
		view   bool
	}{
		{notYours, 409, "not_your_turn", true},
		{dup, 409, "duplicate_move", true},
		{finished, 409, "finished", true},
		{missing, 404, "not_found", false},
		{exists, 409, "exists", false},
		{invalid, 400, "invalid_input", false},
		{&synckairos.ConflictError{SessionID: "g"}, 409, "conflict", false},
		{errors.New("boom"), 500, "internal", false},
	} {
		rec := httptest.NewRecorder()
		skhttp.WriteError(rec, c.err)
		var body struct {
			Error, Message string
			View           *json.RawMessage
		}
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != c.status || body.Error != c.code || (body.View != nil) != c.view {
			t.Errorf("%v: %d %s (view %v), want %d %s (view %v)", c.err, rec.Code, body.Error, body.View != nil, c.status, c.code, c.view)
		}
		if c.code == "internal" && strings.Contains(body.Message, "boom") {
			t.Errorf("an internal error's message is shown: %q", body.Message)
		}
	}
}

// Over HTTP/2, where a connection cannot be taken out of net/http, the
// stream runs in its handler: the same events, heartbeats included.
func TestStreamOverHTTP2(t *testing.T) {
	t.Parallel()
	m, _ := synckairostest.NewManager(t, nil)
	mux := http.NewServeMux()
	mux.Handle("GET /games/{id}/clock", skhttp.Stream(m, &skhttp.StreamOptions{Heartbeat: 50 * time.Millisecond}))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	if _, err := m.CreateSession(ctx, &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
		t.Fatal(err)
	}
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(reqCtx, "GET", srv.URL+"/games/g/clock", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("protocol %s", res.Proto)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	got := map[string]bool{}
	if _, err := m.StartSession(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() && !(got["id: 1"] && got["id: 2"] && got[": ping"]) {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			line = "id: " + version(id)
		}
		got[line] = true
	}
	if !got["id: 1"] || !got["id: 2"] || !got[": ping"] {
		t.Fatalf("over HTTP/2: %v", got)
	}
}

// Over HTTP/1.1 the stream leaves net/http after its headers: heartbeats
// still come, from the shared writers.
func TestHijackedStreamHeartbeats(t *testing.T) {
	t.Parallel()
	m, srv := server(t, &skhttp.StreamOptions{Heartbeat: 50 * time.Millisecond})
	if _, err := m.CreateSession(context.Background(), &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
		t.Fatal(err)
	}
	res, _ := open(t, srv.URL+"/games/g/clock", nil)
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pings := 0
	for sc.Scan() && pings < 2 {
		if sc.Text() == ": ping" {
			pings++
		}
	}
	if pings < 2 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d pings, %q", pings, res.Header.Get("Content-Type"))
	}
}
