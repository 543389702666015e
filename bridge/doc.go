// Package bridge wires the southbound adapters to the upstream OSAP
// session: it runs each configured sub-device, announces the topology,
// routes attribute reports and events up, and dispatches downlink
// requests (attribute.set, attribute.get, operation.invoke) to the right
// adapter.
//
// # Guarantees
//
//   - An event is appended to the outbox, durably, before Sink.Event
//     returns, and is removed only when the platform's PUBACK for it
//     arrives. Events are sent in outbox id order; after a disconnection
//     the oldest unacknowledged event is sent first again, so the platform
//     sees every event at least once and deduplicates on its id.
//   - Attributes are state: while the upstream is away only the newest
//     value of each attribute is kept (in the store), and sent once when
//     the session comes back.
//   - Nothing the upstream does blocks an adapter: publishing never waits
//     for the network, and a slow platform only grows the outbox.
//   - Every goroutine the bridge starts is stopped and waited for by Run
//     before it returns.
package bridge
