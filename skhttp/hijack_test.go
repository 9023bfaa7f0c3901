package skhttp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/skhttp"
	"github.com/synckairos/synckairos/synckairostest"
)

// reviewHead sends a raw request through handler h and returns the response
// head lines.
func reviewHead(t *testing.T, h http.Handler, path string) []string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			return lines
		}
		lines = append(lines, l)
	}
}

func reviewManager(t *testing.T) *synckairos.Manager {
	m, _ := synckairostest.NewManager(t, nil)
	if _, err := m.CreateSession(context.Background(), &synckairos.State{SessionID: "g", Mode: synckairos.ModePerParticipant, Participants: players()}); err != nil {
		t.Fatal(err)
	}
	return m
}

// Found by an independent review of the hijacked streams. A host
// middleware that sets a default Content-Type (common in JSON APIs): the
// stream's head has one, text/event-stream.
func TestHijackedHeadHasOneContentType(t *testing.T) {
	t.Parallel()
	m := reviewManager(t)
	st := skhttp.Stream(m, &skhttp.StreamOptions{SessionID: func(*http.Request) string { return "g" }})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		st.ServeHTTP(w, r)
	})
	var ct []string
	for _, l := range reviewHead(t, h, "/") {
		if strings.HasPrefix(strings.ToLower(l), "content-type:") {
			ct = append(ct, l)
		}
	}
	if len(ct) != 1 || ct[0] != "Content-Type: text/event-stream" {
		t.Fatalf("Content-Type lines: %q", ct)
	}
}

// A host header whose value carries a CR LF (taken from a query
// parameter, say) is cleaned as net/http cleans it: no header injected.
func TestHijackedHeadIsNotInjected(t *testing.T) {
	t.Parallel()
	m := reviewManager(t)
	st := skhttp.Stream(m, &skhttp.StreamOptions{SessionID: func(*http.Request) string { return "g" }})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", r.URL.Query().Get("rid"))
		st.ServeHTTP(w, r)
	})
	for _, l := range reviewHead(t, h, "/?rid=a%0D%0ASet-Cookie:%20evil=1") {
		if strings.HasPrefix(l, "Set-Cookie") {
			t.Fatalf("injected header line %q", l)
		}
	}
}

// Hijacked streams are no longer the server's: StreamHandler.Close, which
// a host registers with RegisterOnShutdown, ends them.
func TestStreamHandlerCloseEndsStreams(t *testing.T) {
	t.Parallel()
	m := reviewManager(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stream := skhttp.Stream(m, &skhttp.StreamOptions{SessionID: func(*http.Request) string { return "g" }, Heartbeat: 50 * time.Millisecond})
	srv := &http.Server{Handler: stream}
	srv.RegisterOnShutdown(stream.Close) // as the docs say
	go srv.Serve(ln)
	res, _ := open(t, "http://"+ln.Addr().String()+"/", nil)
	ch := events(t, res.Body)
	next(t, ch)
	srv.Shutdown(context.Background())
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(2 * time.Second):
		// drain for the reader goroutine once the Manager closes
		t.Fatal("the stream still runs 2s after http.Server.Shutdown")
	}
}

// A client that goes away closes its hijacked watcher at once (a read on
// the connection sees it), not at the next heartbeat's failed write.
//
// Not parallel: it looks for the fleet's goroutines among all of the
// process's.
func TestHijackedWatcherClosesWhenTheClientGoes(t *testing.T) {
	m := reviewManager(t)
	mux := http.NewServeMux()
	mux.Handle("GET /games/{id}/clock", skhttp.Stream(m, &skhttp.StreamOptions{Heartbeat: time.Minute}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	res, cancel := open(t, "http://"+ln.Addr().String()+"/games/g/clock", nil)
	next(t, events(t, res.Body))
	cancel()
	res.Body.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*fleet).heartbeat") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher of a departed client is still open 2s later")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
