// Package rediscluster starts a throwaway Redis Cluster on loopback from the
// redis-server and redis-cli binaries, for tests: three masters and three
// replicas on free ports, in a temporary folder.
package rediscluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synckairos/synckairos/internal/slots"
)

// ErrNoBinaries reports that redis-server or redis-cli is not on the PATH.
var ErrNoBinaries = errors.New("rediscluster: redis-server and redis-cli are needed on the PATH")

// Cluster is a running cluster.
type Cluster struct {
	// Addrs are the nodes' host:port, masters first as redis-cli made them.
	Addrs []string
	dir   string
	cli   string
	procs []*exec.Cmd
	dead  map[string]bool // nodes killed by Kill
}

// Start starts a cluster of masters masters with one replica each, and
// returns once every slot is served and the cluster state is ok.
func Start(ctx context.Context, masters int) (*Cluster, error) {
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		return nil, ErrNoBinaries
	}
	dir, err := os.MkdirTemp("", "synckairos-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, cli: cli, dead: make(map[string]bool)}
	if err := c.startNodes(ctx, server, masters); err != nil {
		c.Stop()
		return nil, err
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("rediscluster: create: %w\n%s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	// Every master streams its writes to its replica. After the initial
	// sync a master holds them back until the replica's first REPLCONF ACK,
	// up to a second later; a master killed before that takes every write
	// since with it. A write that a replica acknowledged (WAIT) proves the
	// stream runs.
	for _, a := range c.Masters(ctx) {
		key, err := c.keyOn(ctx, a)
		if err == nil {
			err = waitFor(ctx, func() bool {
				// Answers: OK, the replicas that acknowledged, 1.
				out := strings.Fields(c.runInput(ctx, a, "SET "+key+" 1\nWAIT 1 1000\nDEL "+key+"\n"))
				return len(out) == 3 && out[1] == "1"
			})
		}
		if err != nil {
			c.Stop()
			return nil, fmt.Errorf("rediscluster: master %s streams to no replica: %w", a, err)
		}
	}
	return c, nil
}

// keyOn returns a key in the first slot the master at addr serves.
func (c *Cluster) keyOn(ctx context.Context, addr string) (string, error) {
	for line := range strings.Lines(c.run(ctx, c.cli, addr, "CLUSTER", "NODES")) {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "myself") {
			continue
		}
		lo, _, _ := strings.Cut(f[8], "-")
		slot, err := strconv.Atoi(lo)
		if err != nil {
			break
		}
		for i := 0; ; i++ {
			if key := "rediscluster-probe-" + strconv.Itoa(i); slots.Of(key) == slot {
				return key, nil
			}
		}
	}
	return "", fmt.Errorf("rediscluster: %s serves no slot", addr)
}

// WaitHealthy waits until every live node reports the cluster state ok,
// with every slot served by a live master: after Kill, until a replica has
// taken over the dead master's slots.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	for _, a := range c.Addrs {
		if c.dead[a] {
			continue
		}
		if err := waitFor(ctx, func() bool {
			info := c.run(ctx, c.cli, a, "CLUSTER", "INFO")
			return strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") &&
				c.slotsOnLiveMasters(c.run(ctx, c.cli, a, "CLUSTER", "NODES"))
		}); err != nil {
			return fmt.Errorf("rediscluster: node %s never reported cluster_state:ok: %w", a, err)
		}
	}
	return nil
}

// slotsOnLiveMasters reports whether, in a CLUSTER NODES answer, every node
// that serves slots is a live master.
func (c *Cluster) slotsOnLiveMasters(nodes string) bool {
	for line := range strings.Lines(nodes) {
		// <id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		if c.dead[addr] || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			return false
		}
	}
	return true
}

// Masters returns the addresses of the live masters serving slots, as a
// live node sees them.
func (c *Cluster) Masters(ctx context.Context) []string {
	for _, a := range c.Addrs {
		if c.dead[a] {
			continue
		}
		var masters []string
		for line := range strings.Lines(c.run(ctx, c.cli, a, "CLUSTER", "NODES")) {
			// <id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
			f := strings.Fields(line)
			if len(f) < 9 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			if !c.dead[addr] {
				masters = append(masters, addr)
			}
		}
		return masters
	}
	return nil
}

// MoveSlot moves a hash slot, keys included, to the master at to, as a
// resharding does: IMPORTING/MIGRATING, MIGRATE of its keys, then SETSLOT
// NODE on every master.
func (c *Cluster) MoveSlot(ctx context.Context, slot int, to string) error {
	finish, err := c.StartMoveSlot(ctx, slot, to)
	if err != nil {
		return err
	}
	return finish()
}

// StartMoveSlot moves a hash slot's keys to the master at to, and leaves the
// slot migrating (the old owner answers ASK for every key, which it no
// longer has) until finish hands it over.
func (c *Cluster) StartMoveSlot(ctx context.Context, slot int, to string) (finish func() error, err error) {
	n := strconv.Itoa(slot)
	from := ""
	for _, m := range c.Masters(ctx) {
		if c.owns(ctx, m, slot) {
			from = m
		}
	}
	if from == "" {
		return nil, fmt.Errorf("rediscluster: no master owns slot %d", slot)
	}
	if from == to {
		return func() error { return nil }, nil
	}
	fromID := c.run(ctx, c.cli, from, "CLUSTER", "MYID")
	toID := c.run(ctx, c.cli, to, "CLUSTER", "MYID")
	steps := [][]string{
		{to, "CLUSTER", "SETSLOT", n, "IMPORTING", fromID},
		{from, "CLUSTER", "SETSLOT", n, "MIGRATING", toID},
	}
	for _, st := range steps {
		if out := c.run(ctx, c.cli, st[0], st[1:]...); out != "OK" {
			return nil, fmt.Errorf("rediscluster: %v: %s", st[1:], out)
		}
	}
	host, port, _ := net.SplitHostPort(to)
	for {
		keys := strings.Fields(c.run(ctx, c.cli, from, "CLUSTER", "GETKEYSINSLOT", n, "100"))
		if len(keys) == 0 {
			break
		}
		args := append([]string{"MIGRATE", host, port, "", "0", "5000", "KEYS"}, keys...)
		if out := c.run(ctx, c.cli, from, args...); out != "OK" {
			return nil, fmt.Errorf("rediscluster: MIGRATE: %s", out)
		}
	}
	return func() error {
		for _, m := range c.Masters(ctx) {
			if out := c.run(ctx, c.cli, m, "CLUSTER", "SETSLOT", n, "NODE", toID); out != "OK" {
				return fmt.Errorf("rediscluster: SETSLOT NODE on %s: %s", m, out)
			}
		}
		return nil
	}, nil
}

// Replica returns the address of a live replica of the master at addr, as
// the nodes see it, waiting up to 5 s for one; "" if there is none.
func (c *Cluster) Replica(ctx context.Context, master string) string {
	id := c.run(ctx, c.cli, master, "CLUSTER", "MYID")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, a := range c.Addrs {
			if c.dead[a] {
				continue
			}
			for line := range strings.Lines(c.run(ctx, c.cli, a, "CLUSTER", "NODES")) {
				f := strings.Fields(line)
				if len(f) >= 4 && strings.Contains(f[2], "slave") && !strings.Contains(f[2], "fail") && f[3] == id {
					if addr, _, _ := strings.Cut(f[1], "@"); !c.dead[addr] {
						return addr
					}
				}
			}
		}
	}
	return ""
}

// owns reports whether the master at addr serves slot, by its own CLUSTER
// NODES line.
func (c *Cluster) owns(ctx context.Context, addr string, slot int) bool {
	for line := range strings.Lines(c.run(ctx, c.cli, addr, "CLUSTER", "NODES")) {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "myself") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, isRange := strings.Cut(r, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				continue // an importing or migrating mark
			}
			b := a
			if isRange {
				b, _ = strconv.Atoi(hi)
			}
			if a <= slot && slot <= b {
				return true
			}
		}
	}
	return false
}

// Kill kills the node at addr, as a crash would: its replica takes over its
// slots after the node timeout (2 s here), which WaitHealthy waits for.
func (c *Cluster) Kill(addr string) error {
	for i, a := range c.Addrs {
		if a == addr {
			c.dead[a] = true
			_ = c.procs[i].Process.Kill()
			_ = c.procs[i].Wait()
			return nil
		}
	}
	return fmt.Errorf("rediscluster: no node %s", addr)
}

// Pause stops the node at addr (SIGSTOP) until Resume: it neither answers
// nor replicates meanwhile, as a node cut off from the network.
func (c *Cluster) Pause(addr string) error { return c.signal(addr, pauseProcess) }

// Resume lets a paused node go on (SIGCONT).
func (c *Cluster) Resume(addr string) error { return c.signal(addr, resumeProcess) }

func (c *Cluster) signal(addr string, f func(*os.Process) error) error {
	for i, a := range c.Addrs {
		if a == addr && !c.dead[a] {
			return f(c.procs[i].Process)
		}
	}
	return fmt.Errorf("rediscluster: no live node %s", addr)
}

// Stop kills the nodes and removes their folder.
func (c *Cluster) Stop() {
	for i, p := range c.procs {
		if !c.dead[c.Addrs[i]] {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}
	os.RemoveAll(c.dir)
}

// Logs returns the last lines of every node's log, for a failing test to
// show what the cluster did.
func (c *Cluster) Logs(lines int) string {
	var b strings.Builder
	for _, a := range c.Addrs {
		_, port, _ := net.SplitHostPort(a)
		data, _ := os.ReadFile(filepath.Join(c.dir, port+".log"))
		all := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "--- node %s (killed: %v)\n%s\n", a, c.dead[a], strings.Join(all[max(len(all)-lines, 0):], "\n"))
	}
	return b.String()
}

// URL returns a rueidis URL naming every node.
func (c *Cluster) URL() string {
	u := "redis://" + c.Addrs[0]
	for i, a := range c.Addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

func (c *Cluster) run(ctx context.Context, cli, addr string, args ...string) string {
	host, port, _ := net.SplitHostPort(addr)
	out, _ := exec.CommandContext(ctx, cli, append([]string{"-h", host, "-p", port}, args...)...).Output()
	return string(bytes.TrimSpace(out))
}

// runInput runs redis-cli at addr with input as its commands, on one
// connection.
func (c *Cluster) runInput(ctx context.Context, addr, input string) string {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, c.cli, "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader(input)
	out, _ := cmd.Output()
	return string(bytes.TrimSpace(out))
}

func waitFor(ctx context.Context, ok func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out after 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// freePorts returns n ports p free on loopback with p+10000 (the cluster
// bus) free too. They are taken below the kernel's ephemeral range (32768
// and up on Linux), where a test's own outgoing connections, thousands at
// times, could take one between this check and the node's bind.
func freePorts(n int) ([]int, error) {
	var ports []int
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		p := 10000 + rand.IntN(22000) // bus: 20000 to 31999
		if slices.Contains(ports, p) {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		ln.Close()
		if err != nil {
			continue
		}
		bus.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, errors.New("rediscluster: no free ports")
	}
	return ports, nil
}

// starting serializes the starts of nodes within a process: two clusters
// starting at once could pick the same free ports.
var starting sync.Mutex

// startNodes starts 2 × masters nodes on free ports and waits until each
// answers. A node that does not answer within 5 s (its port was taken by
// another process meanwhile) is given up with the others, and the nodes
// are started again on other ports, three times at most.
func (c *Cluster) startNodes(ctx context.Context, server string, masters int) error {
	starting.Lock()
	defer starting.Unlock()
	var lastErr error
	for range 3 {
		ports, err := freePorts(2 * masters)
		if err != nil {
			return err
		}
		c.procs, c.Addrs = nil, nil
		for _, p := range ports {
			port := strconv.Itoa(p)
			cmd := exec.Command(server,
				"--port", port, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-"+port+".conf", "--cluster-node-timeout", "2000",
				// As in production: the masters that are up serve their slots
				// while another one is down (the default stops the whole cluster).
				"--cluster-require-full-coverage", "no",
				"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--dir", c.dir, "--logfile", filepath.Join(c.dir, port+".log"))
			cmd.SysProcAttr = sysProcAttr() // the nodes die with the test process
			if err := cmd.Start(); err != nil {
				c.killAll()
				return fmt.Errorf("rediscluster: start node %s: %w", port, err)
			}
			c.procs = append(c.procs, cmd)
			c.Addrs = append(c.Addrs, "127.0.0.1:"+port)
		}
		lastErr = nil
		for _, a := range c.Addrs {
			deadline := time.Now().Add(5 * time.Second)
			for c.run(ctx, c.cli, a, "PING") != "PONG" {
				if time.Now().After(deadline) || ctx.Err() != nil {
					lastErr = fmt.Errorf("rediscluster: node %s did not answer within 5s", a)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if lastErr != nil {
				break
			}
		}
		if lastErr == nil {
			return nil
		}
		c.killAll()
	}
	return lastErr
}

// killAll kills the nodes started, for another try.
func (c *Cluster) killAll() {
	for _, p := range c.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	c.procs, c.Addrs = nil, nil
}
