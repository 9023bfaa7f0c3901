package rediscluster

import (
	"os"
	"syscall"
)

// sysProcAttr makes the kernel kill a node when the process that started it
// ends, so that a test binary that exits without Stop (a log.Fatal, a
// timeout) leaves no cluster behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func pauseProcess(p *os.Process) error  { return p.Signal(syscall.SIGSTOP) }
func resumeProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
