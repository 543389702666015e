// Package delivery owns the gateway's ordered event stream: events go into
// the outbox (package store) and from there to the platform, in order, as
// QoS 1 event.report messages, until the platform acknowledges each one.
//
// # Basics
//
// Create a Stream with New over the outbox and Run it with the upstream
// session as its Publisher. Append stores events; the bridge calls it from
// adapters.Sink.Event. Connected and Disconnected tell the stream that the
// session came up or went down (the bridge forwards upstream.Handler's
// calls). A Stream keeps no event in memory that is not also in the
// outbox: its only state is where it stands in the outbox.
//
// The stream, from capture to acknowledgement:
//
//  1. Append writes the events to the outbox (store.AppendBatch: one
//     transaction, one fsync for the batch) and returns once they are
//     durable. The outbox keeps the event itself (sub-device, resource,
//     name, parameters, capture time) in the store's record format; the
//     wire body is made only when the event is sent, so a change of the
//     binding never changes what is on flash.
//  2. The send loop reads the oldest events not yet sent in this epoch
//     (store.Pending) and publishes each as event.report on up/event with
//     QoS 1: the general id is the outbox id in decimal, ts the capture
//     time, dev the sub-device; the body is osap.EventReport.
//  3. At most Config.Window events await their PUBACK at once: that window
//     is the pacing of a backlog, so that after an outage the backlog goes
//     out as fast as the platform acknowledges it and no faster, and
//     attribute reports and replies still find room on the session.
//  4. Each PUBACK hands the id to the ack loop, which removes acknowledged
//     events from the outbox many per write (store.Ack).
//
// # Guarantees
//
// Durability. An event is in the outbox, fsync'd, before Append returns,
// and leaves it only when the platform's PUBACK for it arrives. Append
// writes even when its caller's context is cancelled (a stopping daemon
// still keeps what it captured); the caller passes a context for logging
// scope only.
//
// Ordering. Events are published in outbox id order, which is the order
// Append stored them in. Ids are strictly increasing per gateway (the
// store's guarantee), so the platform can both order and deduplicate on
// them.
//
// At least once on the wire, exactly once in the platform. An event may
// be published more than once (after a reconnection, a failed publish or a
// restart), never skipped: the platform deduplicates on (DevID, id), as
// the binding requires.
//
// Reconnection. Nothing is sent before Connected, which the bridge calls
// once the topology and the kept attribute values have gone up, nor after
// Disconnected. Every Connected and Disconnected starts a new epoch: the
// send position goes back to the oldest event still in the outbox and the
// window is emptied. A PUBACK of an earlier epoch still removes its event
// from the outbox but frees no room in the window of the current one. A
// publish that fails (done called with an error) also starts a new epoch,
// so the stream resends from the oldest unacknowledged event rather than
// leave a gap.
//
// SIGKILL and power cuts. Nothing is lost that Append returned for: on the
// next start the stream begins at the oldest event in the outbox. Events
// that the platform had acknowledged but whose Ack had not reached the
// file are sent again, and the platform drops them as duplicates.
//
// Full outbox. When the store's bounds (size, age) drop the oldest events,
// the next Connected appends one outbox.overflow event of the gateway
// itself (resource "outbox", parameter "dropped": how many) so the
// platform learns of the gap. An Append that fails (disk full, store
// closed) returns the error; the events it could not store are counted in
// Metrics.Lost and logged, and the stream goes on with the next ones.
//
// Pictures (binding 2.7). An event that asks for a picture
// (model.EventOccurrence.Picture) is stored first like any other, with
// its picture pending (store: Event.Picture); only then does Run's
// capture loop call its PictureFunc, at once, on a goroutine Run owns
// (at most Config.MaxCaptures at once, each bounded by PictureWait), and
// stream the picture into the store's spool (store.AttachPicture). The
// send loop keeps the order: it stops at an event whose picture is still
// pending until the picture is attached or PictureWait has passed since
// the event's capture time, and the events behind it wait with it; then
// the event goes without the picture, with picture_error "timeout" (the
// store records that, so a late picture is not attached). An attached
// picture is streamed from the spool to the picture service
// (Config.Pictures, a PictureUploader) before its event is published;
// the id is stored (store.SetPictureID), so after a restart the event
// goes with it without a second upload, and the body carries
// "pictures":["<id>"]. Uploads that fail while the session is up are tried
// again with backoff for up to UploadWait; a session that goes down ends
// the try, and the next session tries again. A refused picture
// (ErrPictureRefused), no picture service (ErrNoPictureService, or no
// uploader), a camera that fails or is slow, a picture dropped by the
// spool's bound or one still pending when the gateway restarted: the
// event goes with "picture_error" saying so, never later than its
// picture's bounds allow. The picture leaves the spool with its event's
// acknowledgement.
//
// # Caveats
//
// An event waiting for its picture holds up the events behind it for up
// to PictureWait, and an upload for up to UploadWait while the session is
// up: order is worth more than latency here. The upload runs on the send
// loop; acknowledgements keep flowing meanwhile.
//
// A record whose parameters the store returns damaged (not a JSON object)
// can never be sent: it is logged, counted as lost and removed, so that it
// does not hold up the events behind it.
//
// Run stops the loops it started before it returns; acknowledgements that
// reached the stream by then are written to the outbox first.
package delivery
