// Package modbus is the adapter kind "modbus": Modbus TCP, RTU and ASCII
// sensors as sub-devices, on github.com/goburrow/modbus.
//
// A [[device]] block with kind = "modbus" is one unit on one link. Its
// registers (coils, discrete inputs, input and holding registers) become
// attributes, threshold and change rules on them become events, and named
// write sequences become operations. README.md lists every key.
//
// # Guarantees
//
//   - New is pure: it decodes and checks the configuration without opening
//     anything. Every problem is reported, naming the device, the
//     attribute (or event, operation) and the key: overlapping registers,
//     a type that needs more registers than given, an unknown table, type
//     or byte order, a bad URL.
//
//   - Devices whose URL (and serial settings) are equal share one link,
//     owned by one goroutine that sends one request at a time, keeping
//     request_delay between them. The link starts with the first Run, Get,
//     Set or Invoke that needs it and is closed when the last returns.
//     Each request keeps its device's timeout on TCP; a serial port opens
//     with the longest timeout its devices asked for.
//
//   - A request of Get, Set or Invoke whose context ends before its turn
//     on the link (behind a stalled request, during request_delay or a
//     reconnect) is never sent, even if the link had already taken it:
//     a write answered as timed out (the bridge's 408) is not carried out
//     when the unit comes back. A write that was sent and not answered in
//     time, by the unit's timeout or before its context ended, fails with
//     "device did not answer in time; the write may have been applied":
//     Modbus cannot tell whether the unit carried it out.
//
//   - The attributes of a unit polled at one interval are read with as few
//     requests as Plan allows (gaps up to max_gap are read and discarded,
//     at most max_registers registers or max_bits bits a request).
//
//   - A point that cannot be read is reported bad (model.BadValue) with
//     its reason: an exception response ("exception 2 (illegal data
//     address)"), an answer too short, registers that do not decode (NaN),
//     or no answer to its read while the unit answers its other reads. A
//     merged read that the unit refuses with exception 2, 3 or 4 is split
//     in the same poll until the points at fault are read alone (see
//     isolate: about log2(n)+4 extra requests, once); the good points in it
//     are reported in that poll, and the poll plan keeps the pieces, so
//     later polls read the good points in their own reads. A read that
//     fails on its own is left alone for point_retry, then tried again; a
//     point that reads again is reported good. Bad states are reported like
//     values: when they start or change, and every report_every. Other
//     exceptions (busy, illegal function) make the points of the read bad
//     for that poll, without a split. A TCP gateway's exceptions 10 and 11
//     mean the unit did not answer.
//
//   - A poll goes on past a read the unit does not answer, and stops at
//     the second in a row, or at once when the link is down. A timeout
//     closes the connection (goburrow's TCP client would otherwise pair the
//     late answer with the next request) and the next request reconnects. A
//     failed connect or a broken connection makes the link refuse requests
//     for a backoff that doubles from 200 ms and resets at the first
//     success: up to 30 s on TCP, up to 2 s on a serial port (reopening a
//     device node costs nothing on the bus).
//
//   - A unit is reported offline (Sink.Status) after offline_after polls
//     without an answer, and online at the first answer. An offline unit
//     is not polled but probed: one read of the first register (or bit)
//     of its fastest poll group, bounded by its timeout and queued on the
//     link in turn with the other units' requests. The first probe comes
//     FirstProbe (1 s) after the poll that found it offline; the wait
//     between the starts of two probes then doubles up to skip_for
//     (default 4 s: probes at 1, 3, 7, 11, 15 s...). Any answer, an
//     exception too, ends the probing and every poll group is read at
//     once. So a dead unit costs its bus at most one timeout per probe
//     interval (with the defaults 1 s in every 4 s once at the cap), and
//     a unit back on the wire, or behind a serial port that came back, is
//     polled again within skip_for of its return, plus its turn on the bus
//     (with the defaults, online within 5 s).
//
//   - Run reports an attribute when it changes beyond its deadband, and at
//     least every report_every. Values are bool, int64, float64 or string.
//     Integer types without scale are int64; with scale or offset, float64.
//     A uint64 beyond 2^63-1 is reported as a float64.
//
//   - A serial port that hangs up or whose device node is gone (USB
//     adapter unplugged) fails the request and is reopened, at the next
//     request after the backoff (a probe of its offline units); goburrow's
//     own serial
//     transporters would spin on it forever, so serial links use goburrow's
//     RTU and ASCII framing over a transport of this package.
//
//   - RawOperation (modbus.raw, only with allow_raw = true) sends one
//     request PDU on the device's link, in turn with its polls and the
//     other units of the link, and outside a bit's read-modify-write. An
//     exception is returned as output (exception, exception_name), not as
//     an error.
//
//   - Discover probes units in LikelyOrder, on TCP over several
//     connections, on a serial link one at a time. Each probe is one
//     request bounded by its timeout, and each unit found costs at most a
//     few more: Read Device Identification (up to 8 answers), three
//     SunSpec marker reads and one read per distinct fingerprint range.
//     Discover never writes.
//
//   - A device with profile = "sunspec" is described from its SunSpec
//     models (sunspec.go): the "SunS" marker at holding 40000, 50000 or 0,
//     the chain walked to its end marker, models 1, 101-103, 111-113, 160
//     and 201-204 mapped to the classes. Describe fails, naming the
//     address, while the chain cannot be read; the mapping is fixed once
//     it succeeds. Each poll reads a point and its scale factor register
//     in the same poll, and a value SunSpec marks not implemented is a bad
//     point ("not implemented"), never a number.
//
// # Caveats
//
//   - Writes to one bit of a register read the register and write it back:
//     a change the device makes in between is lost.
//   - Read-back compares the value read with the value written within half
//     a scale step (1e-6 for floats).
//   - Strings are read as bytes in register order (BADC and DCBA swap the
//     two bytes of each register), trailing NULs and spaces removed.
//   - A read that times out is not split (each try would cost a timeout):
//     all its points are bad. For a unit that ignores reads of registers
//     it lacks, rather than answer an exception, set max_gap = 0 and leave
//     those registers out of the map.
//   - The poll plan learns from refusals only while Run runs: a restart
//     splits again, and a point that recovers keeps its own read.
//   - On RTU, the end of an answer to a function this package does not
//     know (modbus.raw, 43/14) is where the CRC first checks: about one
//     answer in 65536 is cut short there, and then fails to decode.
//   - A TCP peer that answers every unit id is indistinguishable, to
//     Discover, from a gateway with a unit at each; the command prints one
//     block when 16 or more units all answered.
package modbus
