//go:build !linux

package main

import "errors"

// reniceSelf is only implemented on Linux.
func reniceSelf(int) error {
	return errors.New("not supported on this system; run the bench under nice")
}
