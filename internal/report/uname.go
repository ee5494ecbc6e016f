//go:build unix

package report

import (
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// uname is the kernel's name, release and machine, as uname -srm prints it.
func uname() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOOS + " " + runtime.GOARCH
	}
	str := func(b []byte) string { return strings.TrimRight(string(b), "\x00") }
	return str(u.Sysname[:]) + " " + str(u.Release[:]) + " " + str(u.Machine[:])
}
