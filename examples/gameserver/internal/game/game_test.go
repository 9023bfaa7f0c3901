package game

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Two instances on one embedded Redis: a game created through A streams
// from B, a move made through A reaches B's stream, a move out of turn is
// refused with the current view, and the page and clock.js are served.
func TestTwoInstances(t *testing.T) {
	t.Setenv("SYNCKAIROS_REDIS_URL", "")
	ctx, cancel := context.WithCancel(context.Background())
	servers, err := Start(ctx, []string{"127.0.0.1:0", "127.0.0.1:0"}, Options{KeyPrefix: "gameserver:"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
		cancel()
	}()
	a, b := "http://"+servers[0].Addr, "http://"+servers[1].Addr
	post := func(url string) (int, map[string]any) {
		t.Helper()
		res, err := http.Post(url, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	if code, v := post(a + "/games/t1?control=1%2B0"); code != 200 || v["status"] != "running" {
		t.Fatalf("new game: %d %v", code, v)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", b+"/games/t1/clock", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	views := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var v map[string]any
				json.Unmarshal([]byte(data), &v)
				views <- v
			}
		}
	}()
	next := func() map[string]any {
		select {
		case v := <-views:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("no view")
		}
		return nil
	}
	if v := next(); v["version"] != 2.0 {
		t.Fatalf("B's first view: %v", v)
	}
	if code, _ := post(a + "/games/t1/move?from=white&turn=1"); code != 200 {
		t.Fatalf("move: %d", code)
	}
	if v := next(); v["version"] != 3.0 || v["active_participant_id"] != "black" {
		t.Fatalf("after the move, B shows %v", v)
	}
	code, body := post(b + "/games/t1/move?from=white")
	if code != 409 || body["error"] != "not_your_turn" || body["view"].(map[string]any)["version"] != 3.0 {
		t.Fatalf("a move out of turn: %d %v", code, body)
	}
	for path, want := range map[string]string{"/": "<title>synckairos game server</title>", "/clock.js": "export class Clock"} {
		res, err := http.Get(a + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
}
