//go:build !linux

package keylock

// Without a cheap thread ID, a holder in Guard is known by its goroutine ID.

func pin() (id uint64, byThread bool) { return goid(), false }

func unpin() {}

func self(bool) uint64 { return goid() }
