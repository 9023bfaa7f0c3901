// Websocket is examples/gameserver with the clocks streamed over a
// WebSocket (github.com/coder/websocket) instead of Server-Sent Events:
//
//	cd examples/gameserver/websocket && go run .
//
// then open http://127.0.0.1:8081/ and http://127.0.0.1:8082/. It is a
// module of its own, so that the WebSocket library is no dependency of
// synckairos's users.
//
// The stream is skhttp.OpenFeed's events, one JSON message each, which
// clock.js reads from a ws:// URL as it reads Server-Sent Events.
package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/synckairos/synckairos"
	"github.com/synckairos/synckairos/examples/gameserver/internal/game"
	"github.com/synckairos/synckairos/skhttp"
)

func main() { game.Main(options("")) }

func options(prefix string) game.Options {
	return game.Options{KeyPrefix: prefix, Transport: "ws", Routes: func(mux *http.ServeMux, m *synckairos.Manager) {
		mux.Handle("GET /games/{id}/ws", Stream(m, 15*time.Second))
	}}
}

// Stream serves a session's events over a WebSocket: skhttp.OpenFeed's,
// one JSON message each ({"event": "view", "id": …, "data": {…}}), a ping
// every heartbeat while nothing changes. A client resuming elsewhere gives
// the last ID it had as the query parameter last_event_id. An unknown
// session is refused with 404 before the upgrade, as skhttp.Stream does.
func Stream(m *synckairos.Manager, heartbeat time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		feed, err := skhttp.OpenFeed(r.Context(), m, r.PathValue("id"), r.URL.Query().Get("last_event_id"), 0)
		if err != nil {
			skhttp.WriteError(w, err)
			return
		}
		defer feed.Close()
		// The page of one instance streams from the others: other origins.
		// (A real server lists its own, or checks a token here.)
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(r.Context()) // ends when the client goes
		for {
			next, cancel := context.WithTimeout(ctx, heartbeat)
			ev, err := feed.Next(next)
			cancel()
			switch {
			case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
				if ping(ctx, c) != nil {
					return
				}
				continue
			case err != nil:
				return
			}
			wctx, cancel := context.WithTimeout(ctx, skhttp.DefaultWriteTimeout)
			err = wsjson.Write(wctx, c, ev)
			cancel()
			if err != nil {
				return
			}
			if ev.Event == skhttp.EventDeleted {
				c.Close(websocket.StatusNormalClosure, "deleted")
				return
			}
		}
	})
}

func ping(ctx context.Context, c *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, skhttp.DefaultWriteTimeout)
	defer cancel()
	return c.Ping(ctx)
}
