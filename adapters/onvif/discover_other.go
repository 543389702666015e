//go:build !linux

package onvif

import (
	"errors"
	"net"
)

// setMulticastInterface is only implemented on Linux; elsewhere the route
// chooses the interface.
func setMulticastInterface(_ *net.UDPConn, ifi *net.Interface) error {
	if ifi != nil {
		return errors.New("choosing the interface is only supported on Linux")
	}
	return nil
}
