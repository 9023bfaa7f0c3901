package keylock

import (
	"runtime"
	"syscall"
)

// A guarded holder is locked to its OS thread, which then runs no other
// goroutine: a caller on that thread is the holder itself.

// pin locks the calling goroutine to its thread and returns the thread's ID.
func pin() uint64 {
	runtime.LockOSThread()
	return uint64(syscall.Gettid())
}

func unpin() { runtime.UnlockOSThread() }

// self returns the identity the caller would have as a guarded holder.
func self() uint64 { return uint64(syscall.Gettid()) }
