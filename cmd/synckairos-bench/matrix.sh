#!/usr/bin/env bash
# Runs the measurements of BENCHMARKS.md: the headline run three times, then
# how each figure grows with sessions, participants and concurrency. Writes
# one JSON file per run into the folder given (default ./bench-out), and the
# redis-benchmark reference of the same run.
#
#   bash cmd/synckairos-bench/matrix.sh bench-out
set -euo pipefail
out=${1:-bench-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
(cd "$(dirname "$0")" && go build -o "$out/synckairos-bench" .)
b() { local name=$1; shift; echo "== $name: $*" >&2; "$out/synckairos-bench" -quiet -format json "$@" > "$out/$name.json"; }

host=127.0.0.1 port=6379
redis-benchmark -h $host -p $port -q -n 100000 -c 1 -t get,set > "$out/redis-benchmark-c1.txt"
redis-benchmark -h $host -p $port -q -n 500000 -c 64 -t get,set > "$out/redis-benchmark-c64.txt"
redis-benchmark -h $host -p $port -q -n 500000 -c 64 -P 16 -t get,set > "$out/redis-benchmark-c64-P16.txt"

# The headline figures, every scenario on its defaults, three times.
for i in 1 2 3; do b "all-$i" -duration 10s; done
# The same with a client that batches its writes (rueidis MaxFlushDelay).
for i in 1 2 3; do b "flush50-$i" -duration 10s -flush-delay 50us -scenarios get,update,switch,mutate-contended; done
# Latency unloaded: one goroutine.
b "c1" -duration 6s -concurrency 1 -scenarios get,update,switch
# Growth with concurrency.
for c in 8 256; do b "conc-$c" -duration 6s -concurrency $c -scenarios get,update,switch; done
# Growth with participants.
for p in 100 1000; do b "part-$p" -duration 6s -participants $p -scenarios get,update,switch; done
# Growth with sessions.
for s in 100 10000; do b "sess-$s" -duration 6s -sessions $s -scenarios get,switch; done
# Contention: more goroutines, fewer sessions, more instances.
b "mut-c200" -duration 6s -concurrency 200 -scenarios mutate-contended
b "mut-s1" -duration 6s -sessions 1 -scenarios mutate-contended
b "mut-i8" -duration 6s -instances 8 -scenarios mutate-contended
# Pub/sub: subscribers, and a steady rate.
for s in 1 16; do b "pubsub-$s" -duration 6s -subscribers $s -scenarios pubsub; done
b "pubsub-rate1000" -duration 6s -rate 1000 -scenarios pubsub
# Expiry: sessions.
for s in 1000 50000; do b "expiry-$s" -duration 10s -sessions $s -scenarios expiry; done
# Audit: lag at a steady 2,000 updates/s.
b "audit-rate2000" -duration 10s -rate 2000 -scenarios audit
