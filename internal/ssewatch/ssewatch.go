// Package ssewatch runs many Server-Sent Events watchers of skhttp.Stream in
// a process of their own, for the measurements of many watchers (the skhttp
// tests and the load tool): the server's memory is then the server's, and
// neither process holds both ends of every connection.
//
// The parent re-executes its own binary with Start; the child's Main, run
// from an init function when IsChild, opens the watchers, says "ready" once
// each has its first view, records each later view's delay from its write
// (last_transition.at) to its arrival, and writes the delays once its stdin
// closes.
package ssewatch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	envURL      = "SYNCKAIROS_SSEWATCH_URL"
	envWatchers = "SYNCKAIROS_SSEWATCH_WATCHERS"
	envSessions = "SYNCKAIROS_SSEWATCH_SESSIONS"
	envPath     = "SYNCKAIROS_SSEWATCH_PATH"
)

// IsChild reports whether this process is a watchers' process.
func IsChild() bool { return os.Getenv(envURL) != "" }

// Main runs the watchers' process and returns its exit code.
func Main() int {
	base, path := os.Getenv(envURL), os.Getenv(envPath)
	watchers, _ := strconv.Atoi(os.Getenv(envWatchers))
	sessions, _ := strconv.Atoi(os.Getenv(envSessions))
	var mu sync.Mutex
	var delays []int64
	var ready atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: watchers}}
	for i := range watchers {
		go func() {
			// Thousands of connections at once may overflow the server's
			// accept queue on a loaded machine: a refused or reset one
			// tries again.
			var res *http.Response
			var err error
			for attempt := 1; ; attempt++ {
				res, err = client.Get(base + fmt.Sprintf(path, i%sessions))
				if err == nil || attempt == 20 {
					break
				}
				time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			first := true
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				if first {
					first = false
					ready.Add(1)
					continue
				}
				var v struct {
					LastTransition struct{ At time.Time } `json:"last_transition"`
				}
				if json.Unmarshal([]byte(data), &v) == nil {
					d := time.Since(v.LastTransition.At).Microseconds()
					mu.Lock()
					delays = append(delays, d)
					mu.Unlock()
				}
			}
		}()
	}
	for deadline := time.Now().Add(time.Minute); ready.Load() < int64(watchers); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "%d of %d watchers ready after a minute\n", ready.Load(), watchers)
			return 1
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	mu.Lock()
	defer mu.Unlock()
	if err := json.NewEncoder(os.Stdout).Encode(delays); err != nil {
		return 1
	}
	return 0
}

// Watchers is a running watchers' process.
type Watchers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// Start starts watchers watchers of the streams base+fmt.Sprintf(path, i %
// sessions) in a copy of this binary, and returns once each has its first
// view.
func Start(base, path string, watchers, sessions int) (*Watchers, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envURL+"="+base, envPath+"="+path,
		fmt.Sprint(envWatchers, "=", watchers), fmt.Sprint(envSessions, "=", sessions))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &Watchers{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	if line, err := w.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		w.Kill()
		return nil, fmt.Errorf("ssewatch: the watchers: %q, %v", line, err)
	}
	return w, nil
}

// Delays stops the watchers and returns each delivery's delay from its
// write, in microseconds.
func (w *Watchers) Delays() ([]int64, error) {
	w.stdin.Close()
	var delays []int64
	err := json.NewDecoder(w.out).Decode(&delays)
	_ = w.cmd.Wait()
	return delays, err
}

// Kill ends the watchers' process.
func (w *Watchers) Kill() {
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
}
