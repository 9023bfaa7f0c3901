// Package game is the game server of examples/gameserver, shared by its
// two variants: the clocks streamed as Server-Sent Events (skhttp.Stream,
// examples/gameserver) and over a WebSocket (skhttp.OpenFeed,
// examples/gameserver/websocket, a module of its own).
package game

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/skhttp"
	"github.com/synckairos/synckairos/synckairostest"
)

//go:embed page.html
var page []byte

// Options configure the instances.
type Options struct {
	// KeyPrefix is the prefix of the game server's keys in Redis.
	KeyPrefix string
	// Transport is how the page streams the clocks: "sse" (the default)
	// or "ws", the route Routes adds.
	Transport string
	// Routes, when set, adds routes to each instance's.
	Routes func(mux *http.ServeMux, m *synckairos.Manager)
}

// Server is one instance: a Manager and its HTTP server.
type Server struct {
	Addr string
	m    *synckairos.Manager
	http *http.Server
	stop func()
}

// Close stops the instance.
func (s *Server) Close() {
	s.http.Close()
	s.stop()
	s.m.Close()
}

// Start starts one instance per address, sharing one Redis: the one of
// SYNCKAIROS_REDIS_URL, or an embedded one.
func Start(ctx context.Context, addrs []string, o Options) ([]*Server, error) {
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
	var servers []*Server
	for _, addr := range addrs {
		m, err := open(&synckairos.Config{KeyPrefix: o.KeyPrefix})
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
		s := &Server{Addr: ln.Addr().String(), m: m, stop: stopExpirer}
		s.http = &http.Server{Handler: handler(m, o), ReadHeaderTimeout: 5 * time.Second}
		go s.http.Serve(ln)
		servers = append(servers, s)
	}
	return servers, nil
}

// handler is one instance's routes: the page, skhttp's parts, and the
// game's commands.
func handler(m *synckairos.Manager, o Options) http.Handler {
	mux := http.NewServeMux()
	body := page
	if o.Transport != "" {
		body = bytes.Replace(page, []byte(`<body>`), []byte(`<body data-transport="`+o.Transport+`">`), 1)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(body)
	})
	mux.Handle("GET /clock.js", skhttp.Script())
	mux.Handle("GET /time", skhttp.Time(m))
	// The page of one instance may stream from another (another origin).
	stream := skhttp.Stream(m, nil)
	mux.HandleFunc("GET /games/{id}/clock", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		stream.ServeHTTP(w, r)
	})
	if o.Routes != nil {
		o.Routes(mux, m)
	}

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
		var turn int64
		if t := r.URL.Query().Get("turn"); t != "" {
			n, err := strconv.ParseInt(t, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: turn %q is not a number", synckairos.ErrInvalidState, t)
			}
			turn = n
		}
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

// Main is a game server's main: the instances of -addr on the key prefix
// of -prefix, with o's transport and routes, until SIGINT or SIGTERM.
func Main(o Options) {
	addrs := flag.String("addr", "127.0.0.1:8081,127.0.0.1:8082", "the instances' addresses, comma-separated")
	flag.StringVar(&o.KeyPrefix, "prefix", cmpOr(o.KeyPrefix, "gameserver:"), "the key prefix in Redis")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	servers, err := Start(ctx, strings.Split(*addrs, ","), o)
	if err != nil {
		log.Fatal(err)
	}
	via := "Server-Sent Events"
	if o.Transport == "ws" {
		via = "a WebSocket"
	}
	for _, s := range servers {
		log.Printf("instance on http://%s/ (clocks over %s)", s.Addr, via)
	}
	<-ctx.Done()
	for _, s := range servers {
		s.Close()
	}
}
