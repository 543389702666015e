// Package store keeps what the gateway must not lose, in one bbolt file
// (go.etcd.io/bbolt): the outbox of events waiting for the platform's
// acknowledgement, the gateway's OSAP credentials, and the last value of
// every attribute.
//
// # Basics
//
// Open a store with Open and close it with Close. A Store is safe for
// concurrent use; one goroutine, the committer, started by Open and
// stopped by Close, does every write.
//
// Outbox: the bridge calls Append for each event before acknowledging it
// to anyone; the OSAP client calls Pending to read the oldest events, sends
// them, and calls Ack with the ids the platform acknowledged (PUBACK). The
// outbox keeps events in its own record format (device, resource, event
// name, parameters as a JSON object, capture time), not as protocol bytes:
// the OSAP client makes the event.report message from a Record.
// Stats gives the figures for metrics (count, bytes, age of the oldest,
// drops, damage) without reading the file, and TakeOverflow the number of
// events dropped since it was last called, for the outbox.overflow event.
//
// Pictures (binding 2.7): an event appended with Event.Picture is stored
// with its picture pending. AttachPicture streams the picture into the
// spool, a directory <name>.pictures beside the file (one file per event,
// <event id in 16 hex digits>.jpg), and marks the record attached, with
// the picture's size and SHA-256; OpenPicture reads it back for the
// upload, SetPictureID records the picture service's id, FailPicture
// records why there is none. Pending returns each event with its
// picture's state (Record.Picture). Ack removes the picture with its
// event.
//
// Credentials: LoadCredentials, SaveCredentials, ClearCredentials.
//
// Last values: PutValues records the newest value (by capture time) of
// each attribute; DrainValues hands out the values not yet sent and marks
// those accepted, so that after an outage only the latest state is sent,
// once; LastValues reads them all.
//
// # Guarantees
//
// Durability. Append, Ack, PutValues, SaveCredentials, ClearCredentials
// and TakeOverflow return only once their transaction is committed and
// fsync'd: what they stored survives the process being killed and (as far
// as the disk honours fsync) a power cut. Concurrent writes share one
// transaction and one fsync (group commit): the committer takes every
// request waiting, and after a batch of n it waits briefly (at most half a
// commit, at most 2 ms) for up to n more, so that many writers share each
// fsync; a lone writer never waits.
//
// Atomicity. Each transaction is all or nothing, including the outbox
// counters kept with the data: after a crash the file holds exactly the
// writes that returned (and possibly some that were in flight), never part
// of one.
//
// Ids. Outbox ids come from a sequence stored in the file: strictly
// increasing in commit order, never reused, even after the outbox empties,
// after compaction, or after a crash. A new file starts its sequence at
// the current time in microseconds, so a file started afresh (after damage
// or deletion) continues above the ids of the old one if the clock is
// right. Ids of appends that failed are never seen.
//
// Ordering. Pending returns events in id order, which is commit order; one
// goroutine's appends get increasing ids. Ack is idempotent and ignores
// unknown ids.
//
// Bounds. The outbox holds at most Options.MaxBytes (default 256 MiB,
// counted as key + value + bbolt's 16-byte entry overhead, about 300 bytes
// for a 256-byte event, so about 900,000 such events) and no event
// captured more than Options.MaxAge (default 7 days) ago. Beyond that the
// oldest events are dropped: counted in Stats().Dropped and in
// TakeOverflow, logged as a warning once when an episode starts and at
// info when the outbox has room again (below 90% of MaxBytes). Age is
// enforced at each write and once a minute.
//
// Pictures. AttachPicture returns once the picture is durable: its bytes
// are written to <id>.tmp in the spool and fsync'd, the file is renamed
// to <id>.jpg and the directory fsync'd, and only then is the record
// changed from pending to attached (one more commit). A crash before the
// commit leaves the record pending and a file no record holds; Open
// removes every file of the spool that no stored, attached event holds
// (temporary files, pictures of acknowledged or dropped events) before
// anything else. The record never says attached without its file. A
// picture is streamed: the store holds a copy buffer of it in memory,
// never the whole picture. A picture still pending when the store was
// opened (its event stored by an earlier run) will never be attached:
// Pending reports it with Err PictureRestarted, and AttachPicture refuses
// it (ErrNotPending). SetPictureID is durable too, so an event whose
// picture was uploaded before a restart goes with that id, without a
// second upload. Once given up (FailPicture) or attached, a picture is
// never pending again: a late capture cannot attach to an event that went
// without it.
//
// Picture bound. Pictures count against MaxBytes with the outbox (the
// file's size each, up to Options.MaxPictureBytes, default 8 MiB, the
// picture service's limit). When a write leaves the outbox and the spool
// together over MaxBytes, the oldest pictures are dropped first, their
// events kept with Err PictureDropped ("dropped: spool full", or their id
// if uploaded already); events are dropped only when the outbox alone is
// over MaxBytes. Stats().PicturesDropped counts them (stored, like
// Dropped).
//
// Compaction. bbolt files never shrink. When the file exceeds twice the
// live outbox (and 32 MiB), the committer copies it to <name>.compact,
// fsyncs it, renames it over the store and fsyncs the directory. A crash
// before the rename leaves the old file intact and Open deletes the
// leftover; after it, the new file is complete. Writes wait meanwhile.
//
// Damage. Open runs bbolt's consistency check on the whole file, after
// checking that the file is as long as its meta page says. A damaged or
// truncated file, or one that is not a bbolt file at all, is renamed <name>.corrupt-<UTC time>, a
// fresh store is started, an error is logged and Stats().Corruptions
// counts it: the daemon keeps running, without the lost events and
// credentials (the OSAP client then authenticates afresh). An outbox or
// value record that fails to decode later is logged, counted, removed and
// skipped. A valid bbolt file that is not a store is refused (ErrNotStore).
//
// Full disk. A write that meets ENOSPC (or EDQUOT, EFBIG) fails with an
// error wrapping ErrNoSpace and naming the operation ("store: append: no
// space left for the store: write …: no space left on device"); nothing
// already stored is lost, the store stays usable, and writes succeed
// again once there is space, without reopening. bbolt rolls the failed
// transaction back and keeps its meta page on the last commit: every
// event whose Append returned nil stays, in order, and the file passes
// bbolt's consistency check (tested on a real 4 MiB tmpfs, with 1 and 8
// writers; Open succeeds on the full disk too). Stats().NoSpace counts
// the writes refused so since Open, and Stats().DiskFull says the latest
// append was refused (an append that succeeds clears it). Acknowledgements
// and other rewrites usually succeed on a full disk, reusing the pages
// freed by earlier commits, but may fail too (ErrNoSpace): the events
// then stay stored. A picture that cannot be spooled fails AttachPicture
// with ErrNoSpace and leaves no file behind; its event stays stored with
// the picture pending. bbolt grows the file sparsely (truncate, then
// writes into it), so the file's size says little: its blocks are what
// count. With MaxBytes below the free space, the oldest events are dropped
// first and appends do not fail: the file takes up to about twice
// MaxBytes (2.0 MiB for MaxBytes 1 MiB, over 100,000 appends of 1 KB),
// and compaction, once the file is over 32 MiB, writes a copy of the live
// data beside it; keep MaxBytes at most a third of the free space.
//
// Files. The directory is created 0700 and the file 0600. Open refuses a
// directory or file that group or others can access (ErrInsecure), naming
// the chmod command that fixes it; a systemd StateDirectory must then be
// given StateDirectoryMode=0700.
//
// Schema. The meta bucket holds a schema version. Open migrates an older
// file step by step in one transaction and refuses a newer one
// (ErrNewerSchema) without touching it.
//
// Record formats. Every stored record starts with a format byte, so that
// one kind of record can change without rewriting the file. Append writes
// outbox format 2 for an event without a picture:
//
//	format (2) | capture time, unix ns (8, BE) | uvarint len(dev) | dev |
//	uvarint len(resource) | resource | uvarint len(name) | name | params
//
// where params, the rest of the value, is the JSON object
// json.Marshal(Event.Params) wrote, or nothing when there are none; and
// format 3 for an event with a picture: format 2 with the picture's state
// between the name and the params:
//
//	flags (1: 1 pending, 2 attached, 4 uploaded, 8 failed) |
//	[attached: uvarint size | SHA-256 (32)] | [uploaded: uvarint len(id) | id] |
//	[failed: uvarint len(reason) | reason]
//
// Formats 1 and 2 are read as before (an event without a picture). Open
// moves a file to schema 3 without rewriting any record, so that an
// osapgw of schema 2 refuses it rather than delete format-3 records as
// damaged. Format
// 1, which osapgw wrote before (schema 1), held the body of event.report
// after the device: {"resource":…,"event":…,"params":…,"ts":…}. It is
// read, never written: a file from before keeps its format-1 records until
// they are acknowledged (or dropped by the bounds), and Pending returns
// them like the others, their parameters byte for byte as the old body
// held them and the capture time from the record's header. Open moves such
// a file to schema 2 without rewriting its records; from then on an
// osapgw that knows only schema 1 refuses it (ErrNewerSchema) rather than
// take format-2 records for damage. Decoding is strict: a length
// not minimally encoded or past the end, an empty resource or event name
// in format 2, parameters that are not one JSON object, or a format-1 body
// with other keys or types is damage (see Damage).
//
// # Caveats
//
// A context passed to Append bounds only the wait: if it ends after the
// committer took the event, Append returns ctx.Err() but the event may be
// stored, and then delivered. The platform deduplicates on id, and the
// caller should not append it again.
//
// The SIGKILL crash test shows atomicity and ordering across process
// death; durability across a power cut rests on fsync (bbolt fdatasyncs
// the data pages, then the meta page), which no test here can show.
//
// Throughput is bounded by the disk's fsync latency: each commit costs two
// fdatasyncs, so n concurrent writers get at most n / (2 × fsync latency)
// appends per second. See docs/performance.md.
//
// MaxAge uses capture times. Events captured while the clock was wrong
// (a box without a real-time clock, before NTP) may be dropped as old, or
// kept too long.
//
// On 32-bit systems MaxBytes is limited to 512 MiB: bbolt maps the file,
// which may grow to twice the live data before compaction, and compaction
// maps a second file, all in 2 GiB of address space.
//
// Open reads the whole file to check it: 0.3 s for a 306 MiB file (a
// million events) on the development VM, several times that on a small
// board. Memory: bbolt maps the file (up to 2 GiB on 32-bit
// ARM, which the default MaxBytes keeps far from); the Go heap stays flat
// while a backlog is replayed page by page.
//
// The spool's files are not checked at Open beyond their size: a picture
// changed on disk is uploaded as it is (the picture service checks the
// hash the upload's token carries against the body, not against the one
// stored here). A spool file removed by hand leaves an attached record
// whose OpenPicture fails with fs.ErrNotExist. A file moved aside as
// damaged takes its records with it: the spool's pictures then belong to
// no event and are removed.
//
// A damaged file that makes bbolt panic inside its Open leaves one file
// descriptor and mapping behind until the process exits.
//
// One process only: a second Open of the same file fails with ErrLocked
// after one second.
//
// Values: a float64 with an integral value stays a float64 here (the wire
// form, JSON, does not distinguish them). A value record is written in
// format 1 unless the value has a reason (Value.Err, a bad point's), which
// only format 2 holds; both are read. The schema version does not change
// for it: an older osapgw reading a file with format-2 value records takes
// them for damage and removes them, which loses only the bad state of
// those points until the adapter reports it again.
//
// Events are at most MaxEventBytes (1 MiB) encoded. Their parameters are
// encoded once, by Append, with encoding/json: keys sorted, numbers as it
// writes them (an int64 or uint64 exactly, a float64 in its shortest form,
// from 1e21 up and below 1e-6 with an exponent: 1e+21, 1e-7), strings with
// <, > and & escaped (\u003c); Pending returns those bytes, not a map. An
// event needs a resource and a name; its device, resource and name may not
// contain NUL.
package store
