package modbus

import (
	"fmt"
	"sort"
)

// Span is a range of one table that a value occupies: Count registers (or
// bits) from Address. ID identifies it in the plan.
type Span struct {
	ID      int
	Table   Table
	Address uint16
	Count   uint16
}

// Read is one read request of a plan: Count registers (or bits) of Table
// from Address, covering the spans listed by ID.
type Read struct {
	Table   Table
	Address uint16
	Count   uint16
	IDs     []int
}

func (r Read) String() string {
	return fmt.Sprintf("%s %d+%d %v", r.Table, r.Address, r.Count, r.IDs)
}

// Limits bound the requests of a plan: MaxGap unused registers (or bits)
// may be read and discarded to merge two spans; a request reads at most
// MaxRegisters registers or MaxBits bits. MaxGap < 0 disables merging
// altogether: every span becomes its own request.
type Limits struct {
	MaxGap       int
	MaxRegisters int
	MaxBits      int
}

// Plan merges spans into as few read requests as the limits allow: spans
// of one table sorted by address are merged while the gap between them is
// at most MaxGap and the request stays within its size limit. Overlapping
// spans (bools in bits of one register) share a request. Requests are
// ordered by table (coil, discrete, input, holding) then address. Plan is
// pure; a span larger than its limit is given a request of its own.
func Plan(spans []Span, lim Limits) []Read {
	order := map[Table]int{Coil: 0, Discrete: 1, Input: 2, Holding: 3}
	s := append([]Span(nil), spans...)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Table != s[j].Table {
			return order[s[i].Table] < order[s[j].Table]
		}
		if s[i].Address != s[j].Address {
			return s[i].Address < s[j].Address
		}
		return s[i].ID < s[j].ID
	})
	var out []Read
	var cur *Read
	for _, sp := range s {
		start, end := int(sp.Address), int(sp.Address)+int(sp.Count) // end exclusive
		max := lim.MaxRegisters
		if sp.Table.bits() {
			max = lim.MaxBits
		}
		if cur != nil && cur.Table == sp.Table && lim.MaxGap >= 0 {
			cend := int(cur.Address) + int(cur.Count)
			newEnd := end
			if cend > newEnd {
				newEnd = cend
			}
			if start-cend <= lim.MaxGap && newEnd-int(cur.Address) <= max {
				cur.Count = uint16(newEnd - int(cur.Address))
				cur.IDs = append(cur.IDs, sp.ID)
				continue
			}
		}
		out = append(out, Read{Table: sp.Table, Address: sp.Address, Count: sp.Count, IDs: []int{sp.ID}})
		cur = &out[len(out)-1]
	}
	return out
}

// units returns where each address of r begins in r.IDs: spans at one
// address (bits of one register) form one unit, which a split never
// divides. r.IDs must be in address order, as Plan leaves them.
func units(r Read, span func(id int) Span) []int {
	starts := make([]int, 0, len(r.IDs))
	for i, id := range r.IDs {
		if i == 0 || span(id).Address != span(r.IDs[i-1]).Address {
			starts = append(starts, i)
		}
	}
	return starts
}

// cover returns the read of ids (spans of r's table, in address order):
// from the first span's address to the end of the one that ends last.
func cover(t Table, ids []int, span func(id int) Span) Read {
	first := span(ids[0]).Address
	end := 0
	for _, id := range ids {
		end = max(end, int(span(id).Address)+int(span(id).Count))
	}
	return Read{Table: t, Address: first, Count: uint16(end - int(first)), IDs: ids}
}
