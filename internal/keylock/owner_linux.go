package keylock

import (
	"runtime"
	"syscall"
)

// A goroutine locked to its thread is the only one that thread runs: a
// caller on that thread is the holder itself.

// pin identifies the calling goroutine for Guard: by its thread, locked to
// it, while a slot is free; else by its goroutine ID.
func pin() (id uint64, byThread bool) {
	select {
	case pinned <- struct{}{}:
		runtime.LockOSThread()
		return uint64(syscall.Gettid()), true
	default:
		return goid(), false
	}
}

func unpin() {
	runtime.UnlockOSThread()
	<-pinned
}

// self returns the caller's identity of the kind a holder has.
func self(byThread bool) uint64 {
	if byThread {
		return uint64(syscall.Gettid())
	}
	return goid()
}
