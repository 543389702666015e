package store

import (
	"encoding/binary"
	"hash/fnv"
	"io"
)

// boltMeta is the part of bbolt's meta page that precheck needs. The
// layout (bbolt internal/common/meta.go, format version 2) is: page header
// (16 bytes), then magic, version, page size, flags (4 bytes each), root
// bucket (root page, sequence: 8 each), freelist page, high-water page id,
// txid, checksum (8 each), all in the machine's byte order (little endian
// on every platform we build for). The checksum is FNV-64a of the fields
// before it.
type boltMeta struct {
	pageSize uint32
	pgid     uint64
	txid     uint64
}

const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	boltPageHeader  = 16
	boltMetaSize    = 64
	boltChecksumOff = 56
)

func readBoltMeta(r io.ReaderAt, off int64) (boltMeta, bool) {
	var buf [boltPageHeader + boltMetaSize]byte
	if _, err := r.ReadAt(buf[:], off); err != nil {
		return boltMeta{}, false
	}
	return parseBoltMeta(buf[boltPageHeader:])
}

func parseBoltMeta(m []byte) (boltMeta, bool) {
	if len(m) < boltMetaSize {
		return boltMeta{}, false
	}
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:boltChecksumOff])
	if h.Sum64() != le.Uint64(m[boltChecksumOff:]) {
		return boltMeta{}, false
	}
	ps := le.Uint32(m[8:])
	if ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: ps, pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}
