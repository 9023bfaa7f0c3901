// Package e2e tests what a browser shows: examples/gameserver in a real
// headless Chromium (Debian's chromium), driven from Go with chromedp. It
// is a module of its own, so that chromedp is no dependency of the
// library's users.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/synckairos/synckairos"
)

func redisURL() string {
	if u := os.Getenv("SYNCKAIROS_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// unavailable skips, or fails under SYNCKAIROS_REQUIRE_SERVICES=1.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("SYNCKAIROS_REQUIRE_SERVICES") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// instance runs one instance of the game server, as a process of its own.
func instance(t *testing.T, bin, addr, prefix string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "-addr", addr, "-prefix", prefix)
	cmd.Env = append(os.Environ(), "SYNCKAIROS_REDIS_URL="+redisURL())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get("http://" + addr + "/time"); err == nil {
			res.Body.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s did not start", addr)
		}
	}
}

// The page opened on instance A, streaming from A then B: a move made
// through B shows within 100 ms; the remaining time shown stays within
// 50 ms of the server's while the clock ticks; A is killed, the page
// reconnects to B and shows the right time; white's flag shows as a flag.
// The screenshot is kept in e2e/screenshots. The same with the clocks
// over Server-Sent Events (examples/gameserver) and over a WebSocket
// (examples/gameserver/websocket, a module of its own).
func TestGameServerInChromium(t *testing.T) {
	browser := "/usr/bin/chromium"
	if _, err := os.Stat(browser); err != nil {
		unavailable(t, "no Chromium at %s (Debian's chromium): %v", browser, err)
	}
	for _, c := range []struct{ name, dir, shot string }{
		{"sse", "../examples/gameserver", "gameserver.png"},
		{"websocket", "../examples/gameserver/websocket", "gameserver-websocket.png"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "gameserver")
			build := exec.Command("go", "build", "-o", bin, ".")
			build.Dir = c.dir
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			play(t, browser, bin, c.shot)
		})
	}
}

// play plays a game in Chromium on two instances of bin.
func play(t *testing.T, browser, bin, screenshot string) {
	var r [4]byte
	rand.Read(r[:])
	prefix := "sktest:e2e:" + hex.EncodeToString(r[:]) + ":"
	addrA, addrB := freeAddr(t), freeAddr(t)
	procA := instance(t, bin, addrA, prefix)
	instance(t, bin, addrB, prefix)
	a, b := "http://"+addrA, "http://"+addrB

	// The server's view, from the test's own Manager on the same Redis.
	m, err := synckairos.Dial(context.Background(), redisURL(), &synckairos.Config{KeyPrefix: prefix})
	if err != nil {
		unavailable(t, "Redis at %s: %v", redisURL(), err)
	}
	defer m.Close()
	ctx := context.Background()
	t.Cleanup(func() { m.DeleteSession(context.Background(), "e2e") })

	post := func(url string) {
		t.Helper()
		res, err := http.Post(url, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("POST %s: %d", url, res.StatusCode)
		}
	}
	post(a + "/games/e2e?control=12s") // 12 seconds each, no increment

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(900, 500))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	defer cancelT()
	page := fmt.Sprintf("%s/?game=e2e&streams=%s,%s", a, a, b)
	if err := chromedp.Do(bctx, chromedp.Navigate(page), chromedp.WaitVisible(`.clock[data-participant="white"]`)); err != nil {
		t.Fatal(err)
	}
	evalString := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	version := func() int {
		n, _ := strconv.Atoi(evalString(`document.getElementById("status").dataset.version || "0"`))
		return n
	}
	// shown returns what the page shows of a participant, and the server's
	// remaining time at the same moment (the midpoint of the evaluation).
	shown := func(id string) (page, server time.Duration) {
		t.Helper()
		before, _ := m.Now(ctx)
		ms, _ := strconv.ParseFloat(evalString(fmt.Sprintf(`document.querySelector('.clock[data-participant="%s"]').dataset.remaining`, id)), 64)
		after, _ := m.Now(ctx)
		s, err := m.GetSession(ctx, "e2e")
		if err != nil {
			t.Fatal(err)
		}
		mid := before.Add(after.Sub(before) / 2)
		rem, _ := s.ParticipantRemainingAt(id, mid)
		return time.Duration(ms) * time.Millisecond, rem
	}
	checkTicking := func(what string, d time.Duration) {
		t.Helper()
		worst := time.Duration(0)
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			p, s := shown("black")
			diff := time.Duration(math.Abs(float64(p - s)))
			worst = max(worst, diff)
			if diff > 50*time.Millisecond {
				t.Fatalf("%s: the page shows %v, the server %v", what, p, s)
			}
		}
		t.Logf("%s: the page within %v of the server over %v", what, worst, d)
	}
	for version() < 2 {
		time.Sleep(10 * time.Millisecond)
	}

	// A move through B shows on the page (streaming from A).
	start := time.Now()
	post(b + "/games/e2e/move?from=white&turn=1")
	for version() < 3 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the move never showed")
		}
		time.Sleep(2 * time.Millisecond)
	}
	shownIn := time.Since(start)
	t.Logf("a move through B showed on A's page in %v", shownIn)
	if shownIn > 100*time.Millisecond {
		t.Errorf("the move showed after %v, want within 100 ms", shownIn)
	}
	checkTicking("black's clock ticking", 2*time.Second)

	// A goes away: the page moves to B's stream.
	procA.Process.Kill()
	procA.Wait()
	post(b + "/games/e2e/move?from=black&turn=2") // white's clock runs again
	for start := time.Now(); version() < 4; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the page did not reconnect to B")
		}
	}
	t.Log("after A was killed, the page streams from B")
	worst := time.Duration(0)
	for range 5 {
		p, s := shown("white")
		worst = max(worst, time.Duration(math.Abs(float64(p-s))))
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("after the reconnection: the page within %v of the server", worst)
	if worst > 50*time.Millisecond {
		t.Errorf("after the reconnection the page is %v off", worst)
	}

	// White's flag falls (the expirer of B writes it) and shows.
	for start := time.Now(); evalString(`String(!!document.querySelector('.clock.expired[data-participant="white"]') && document.getElementById("status").dataset.status === "expired")`) != "true"; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatal("the flag never showed")
		}
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: a PNG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("screenshots", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("screenshots", screenshot), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("white flagged; screenshot in e2e/screenshots/%s (%d bytes)", screenshot, len(shot))
}
