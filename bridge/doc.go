// Package bridge wires the southbound adapters to the upstream OSAP
// session: it runs each configured sub-device, announces the topology,
// routes attribute reports up, hands events to the event stream (package
// delivery), and dispatches downlink requests (attribute.set,
// attribute.get, operation.invoke) to the right adapter.
//
// The files follow the jobs: bridge.go supervises the devices (Apply,
// Run), device.go is one device's life and requests, reports.go the queue
// of attribute reports, topology.go what the platform is told of the
// devices, session.go what happens when the session comes and goes, and
// downlink.go the requests from the platform.
//
// # Guarantees
//
//   - An event is appended to the outbox, durably, before Sink.Event
//     returns; from there the event stream owns it (see package delivery
//     for ordering and acknowledgement).
//   - Attributes are state: while the upstream is away only the newest
//     value of each attribute is kept (in memory for KeepValuesAfter, then
//     in the store), and sent once when the session comes back.
//   - Nothing the upstream does blocks an adapter: publishing never waits
//     for the network, and a slow platform only grows the outbox.
//   - Every goroutine the bridge starts is stopped and waited for by Run
//     before it returns. A device's goroutine and its requests are owned
//     by the bridge, not by the caller that started them: Apply and Run
//     cancel them.
package bridge
