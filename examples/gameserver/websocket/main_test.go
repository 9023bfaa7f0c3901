package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/synckairos/synckairos/examples/gameserver/internal/game"
	"github.com/synckairos/synckairos/skhttp"
)

// Two instances on one embedded Redis: a game created through A streams
// over B's WebSocket; a move through A reaches it; a client resuming on A
// with the last ID it had gets only what is newer; an unknown game is
// refused with 404 before the upgrade; the page asks for the WebSocket; a
// new game on the table (a delete) ends the stream with "deleted".
func TestWebSocketStream(t *testing.T) {
	t.Setenv("SYNCKAIROS_REDIS_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	servers, err := game.Start(ctx, []string{"127.0.0.1:0", "127.0.0.1:0"}, options("ws:"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	a, b := servers[0].Addr, servers[1].Addr
	post := func(url string) {
		t.Helper()
		res, err := http.Post("http://"+url, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("POST %s: %d", url, res.StatusCode)
		}
	}
	dial := func(url string) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.Dial(ctx, "ws://"+url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	read := func(c *websocket.Conn) skhttp.FeedEvent {
		t.Helper()
		var ev skhttp.FeedEvent
		if err := wsjson.Read(ctx, c, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	post(a + "/games/t1?control=1%2B0")
	cb := dial(b + "/games/t1/ws")
	if ev := read(cb); ev.Event != "view" || !strings.HasSuffix(ev.ID, "/2") || ev.View.Status != "running" {
		t.Fatalf("B's first event: %+v", ev)
	}
	post(a + "/games/t1/move?from=white&turn=1")
	ev := read(cb)
	if !strings.HasSuffix(ev.ID, "/3") || ev.View.Active != "black" {
		t.Fatalf("after the move, B sends %+v", ev)
	}
	third := ev.ID
	ca := dial(a + "/games/t1/ws?last_event_id=" + url.QueryEscape(third))
	post(b + "/games/t1/move?from=black&turn=2")
	for _, c := range []*websocket.Conn{ca, cb} {
		if ev := read(c); !strings.HasSuffix(ev.ID, "/4") {
			t.Fatalf("after the second move: %+v", ev)
		}
	}

	_, res, err := websocket.Dial(ctx, "ws://"+a+"/games/nope/ws", nil)
	if err == nil || res == nil || res.StatusCode != 404 {
		t.Fatalf("an unknown game: %v %v", res, err)
	}
	var body struct{ Error string }
	json.NewDecoder(res.Body).Decode(&body)
	if body.Error != skhttp.CodeNotFound {
		t.Fatalf("an unknown game's body: %+v", body)
	}
	page, err := http.Get("http://" + a + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(html), `<body data-transport="ws">`) {
		t.Fatal("the page does not ask for the WebSocket")
	}

	post(a + "/games/t1") // a new game on the table: the old one is deleted
	if ev := read(cb); ev.Event != skhttp.EventDeleted {
		t.Fatalf("after the delete: %+v", ev)
	}
	if _, _, err := cb.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("the stream goes on after the delete: %v", err)
	}
}
