// Gameserver is a small chess-clock server run as two instances sharing one
// Redis, with a page that shows the clocks ticking in the browser:
//
//	go run ./examples/gameserver
//
// then open http://127.0.0.1:8081/ (instance A) and, in another tab,
// http://127.0.0.1:8082/ (instance B). Both instances run on the embedded
// default, one in-process Redis, unless SYNCKAIROS_REDIS_URL names a real
// one (then run each instance as its own process: -addr and -only).
//
// Each instance mounts skhttp's stream, time endpoint and clock.js, and
// has its commands (new game, move, pause, resume) in a few lines each;
// the page moves through either instance and streams from the other, and
// clock.js moves to the next stream if one goes away. The expirer calls the
// flags.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/skhttp"
	"github.com/synckairos/synckairos/synckairostest"
)

//go:embed page.html
var page []byte

// keyPrefix is the prefix of the game server's keys (-prefix).
var keyPrefix = "gameserver:"

func main() {
	addrs := flag.String("addr", "127.0.0.1:8081,127.0.0.1:8082", "the instances' addresses, comma-separated")
	flag.StringVar(&keyPrefix, "prefix", keyPrefix, "the key prefix in Redis")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	servers, err := start(ctx, strings.Split(*addrs, ","))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range servers {
		log.Printf("instance on http://%s/", s.Addr)
	}
	<-ctx.Done()
	for _, s := range servers {
		s.Close()
	}
}

// server is one instance: a Manager and its HTTP server.
type server struct {
	Addr string
	m    *synckairos.Manager
	http *http.Server
	stop func()
}

func (s *server) Close() {
	s.http.Close()
	s.stop()
	s.m.Close()
}

// start starts one instance per address, sharing one Redis: the one of
// SYNCKAIROS_REDIS_URL, or an embedded one.
func start(ctx context.Context, addrs []string) ([]*server, error) {
	open := func(cfg *synckairos.Config) (*synckairos.Manager, error) {
		return synckairos.Dial(ctx, os.Getenv("SYNCKAIROS_REDIS_URL"), cfg)
	}
	if os.Getenv("SYNCKAIROS_REDIS_URL") == "" {
		srv, err := synckairostest.NewServer()
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, srv.Close)
		open = func(cfg *synckairos.Config) (*synckairos.Manager, error) {
			client, err := srv.NewClient()
			if err != nil {
				return nil, err
			}
			m, err := synckairos.New(client, cfg)
			if err != nil {
				client.Close()
				return nil, err
			}
			context.AfterFunc(ctx, client.Close)
			return m, nil
		}
	}
	var servers []*server
	for _, addr := range addrs {
		m, err := open(&synckairos.Config{KeyPrefix: keyPrefix})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			m.Close()
			return nil, err
		}
		expirerCtx, stopExpirer := context.WithCancel(ctx)
		go m.RunExpirer(expirerCtx)
		s := &server{Addr: ln.Addr().String(), m: m, stop: stopExpirer}
		s.http = &http.Server{Handler: handler(m), ReadHeaderTimeout: 5 * time.Second}
		go s.http.Serve(ln)
		servers = append(servers, s)
	}
	return servers, nil
}

// handler is one instance's routes: the page, skhttp's parts, and the
// game's commands.
func handler(m *synckairos.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.Handle("GET /clock.js", skhttp.Script())
	mux.Handle("GET /time", skhttp.Time(m))
	// The page of one instance may stream from another (another origin).
	stream := skhttp.Stream(m, nil)
	mux.HandleFunc("GET /games/{id}/clock", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		stream.ServeHTTP(w, r)
	})

	// The commands: each a few lines, errors mapped by skhttp.
	command := func(f func(r *http.Request, id string) (*synckairos.State, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			s, err := f(r, r.PathValue("id"))
			if err != nil {
				skhttp.WriteError(w, err)
				return
			}
			now, _ := m.Now(r.Context())
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(s.ViewAt(now))
		}
	}
	mux.HandleFunc("POST /games/{id}", command(func(r *http.Request, id string) (*synckairos.State, error) {
		control, err := synckairos.ParseTimeControl(cmpOr(r.URL.Query().Get("control"), "3+2"))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", synckairos.ErrInvalidState, err)
		}
		_ = m.DeleteSession(r.Context(), id) // a new game on the same table
		if _, err := m.CreateSession(r.Context(), control.NewSession(id, "white", "black")); err != nil {
			return nil, err
		}
		return m.StartSession(r.Context(), id)
	}))
	mux.HandleFunc("POST /games/{id}/move", command(func(r *http.Request, id string) (*synckairos.State, error) {
		turn, _ := parseInt(r.URL.Query().Get("turn"))
		res, err := m.SwitchCycle(r.Context(), id, &synckairos.SwitchOptions{From: r.URL.Query().Get("from"), Turn: turn})
		if err != nil {
			return nil, err
		}
		return res.State, nil
	}))
	mux.HandleFunc("POST /games/{id}/pause", command(func(r *http.Request, id string) (*synckairos.State, error) {
		return m.PauseSession(r.Context(), id)
	}))
	mux.HandleFunc("POST /games/{id}/resume", command(func(r *http.Request, id string) (*synckairos.State, error) {
		return m.ResumeSession(r.Context(), id)
	}))
	return mux
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func parseInt(s string) (int64, error) {
	var n int64
	if s == "" {
		return 0, nil
	}
	_, err := fmt.Sscan(s, &n)
	if err != nil {
		return 0, errors.New("not a number")
	}
	return n, nil
}
