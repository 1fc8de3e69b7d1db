package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// reniceSelf lowers the priority of every thread of this process to nice
// (Linux sets priorities per thread; threads made later inherit it from
// the thread that makes them). The load generator uses it so that the
// server it measures keeps its 20 ms clock when both share the CPU.
func reniceSelf(nice int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("threads: %w", err)
	}
	var first error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && first == nil {
			first = fmt.Errorf("setpriority %d: %w", tid, err)
		}
	}
	return first
}

// ownSession starts cmd in a session of its own. Besides keeping the
// terminal's Ctrl-C away from it (the bench stops it itself), Linux gives a
// new session its own scheduling group (autogroup), so a server the bench
// starts gets the CPU share a separately started one would, and the load's
// work and niceness stay in the bench's group.
func ownSession(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
