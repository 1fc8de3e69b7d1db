//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

// reniceSelf is only implemented on Linux.
func reniceSelf(int) error {
	return errors.New("not supported on this system; run the bench under nice")
}

// ownSession leaves cmd as it is off Linux.
func ownSession(*exec.Cmd) {}
