package onvif

import (
	"net"
	"syscall"
)

// setMulticastInterface makes conn send multicast through ifi (nil: the
// route's choice), with TTL 1.
func setMulticastInterface(conn *net.UDPConn, ifi *net.Interface) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, 1); serr != nil {
			return
		}
		if ifi != nil {
			serr = syscall.SetsockoptIPMreqn(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, &syscall.IPMreqn{Ifindex: int32(ifi.Index)})
		}
	})
	if err != nil {
		return err
	}
	return serr
}
