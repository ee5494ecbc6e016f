//go:build !unix

package report

import "runtime"

func uname() string { return runtime.GOOS + " " + runtime.GOARCH }
