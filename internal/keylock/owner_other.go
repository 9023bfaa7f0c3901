//go:build !linux

package keylock

import "runtime"

// Without a cheap thread ID, a guarded holder is known by its goroutine ID,
// which Go shows only in stack traces ("goroutine 42 [running]:").

func pin() uint64 { return goid() }

func unpin() {}

func self() uint64 { return goid() }

func goid() uint64 {
	var buf [32]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
