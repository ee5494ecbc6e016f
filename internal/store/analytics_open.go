package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// The leases open at a day's start are saved as one value per account and
// day (analytics_open_sets): a version byte, a table of the distinct
// strings (pools, packages, agent types and versions, hosts, application
// names), then one record per lease in the order they are read back (by
// grant time, then agent id). A record is the agent id, the grant time as
// nanoseconds after the previous record's, flags for the optional fields,
// and indexes into the table. About 25 bytes a lease before PostgreSQL
// compresses the value; a row per lease was about 150.

const openSetVersion = 1

const (
	openHasVersion = 1 << iota
	openHasAppID
	openHasAppName
)

// encodeOpenSet encodes evs in the order they are read back: by grant
// time, then agent id.
func encodeOpenSet(evs []usage.EventRow) []byte {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, usage.CompareOpenLeases)
	idx := map[string]uint64{}
	var table []string
	ref := func(s string) uint64 {
		i, ok := idx[s]
		if !ok {
			i = uint64(len(table))
			idx[s] = i
			table = append(table, s)
		}
		return i
	}
	recs := make([]byte, 0, 32*len(evs))
	var prev int64
	for i := range evs {
		ev := &evs[i]
		recs = binary.AppendUvarint(recs, uint64(len(ev.AgentID)))
		recs = append(recs, ev.AgentID...)
		at := ev.At.UnixNano()
		recs = binary.AppendVarint(recs, at-prev)
		prev = at
		var flags byte
		if ev.AgentVersion != nil {
			flags |= openHasVersion
		}
		if ev.AppID != nil {
			flags |= openHasAppID
		}
		if ev.AppName != nil {
			flags |= openHasAppName
		}
		recs = append(recs, flags)
		for _, s := range []string{ev.PoolID, ev.Package, ev.AgentType, ev.HostID} {
			recs = binary.AppendUvarint(recs, ref(s))
		}
		if ev.AgentVersion != nil {
			recs = binary.AppendUvarint(recs, ref(*ev.AgentVersion))
		}
		if ev.AppID != nil {
			recs = binary.AppendVarint(recs, *ev.AppID)
		}
		if ev.AppName != nil {
			recs = binary.AppendUvarint(recs, ref(*ev.AppName))
		}
	}
	out := []byte{openSetVersion}
	out = binary.AppendUvarint(out, uint64(len(table)))
	for _, s := range table {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	out = binary.AppendUvarint(out, uint64(len(evs)))
	return append(out, recs...)
}

var errOpenSet = errors.New("analytics open leases: bad encoding")

// openSetReader reads an encoded set.
type openSetReader struct {
	b   []byte
	err error
}

func (r *openSetReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errOpenSet, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *openSetReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errOpenSet, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *openSetReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.err, r.b = errOpenSet, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// decodeOpenSet decodes a set, keeping the leases of pools (nil: all);
// names gives host names (a host not in it is named by its id). Every
// string of the table is allocated once, and shared by the leases.
func decodeOpenSet(b []byte, pools []string, names map[string]string) ([]usage.EventRow, error) {
	if len(b) == 0 || b[0] != openSetVersion {
		return nil, fmt.Errorf("%w: version", errOpenSet)
	}
	r := &openSetReader{b: b[1:]}
	nt := r.uvarint()
	if nt > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: table", errOpenSet)
	}
	table := make([]string, nt)
	for i := range table {
		table[i] = string(r.bytes(r.uvarint()))
	}
	ref := func() uint64 {
		i := r.uvarint()
		if i >= uint64(len(table)) {
			r.err = errOpenSet
			return 0
		}
		return i
	}
	str := func() string {
		if i := ref(); r.err == nil {
			return table[i]
		}
		return ""
	}
	var keep map[string]bool
	if pools != nil {
		keep = make(map[string]bool, len(pools))
		for _, p := range pools {
			keep[p] = true
		}
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: count", errOpenSet)
	}
	out := make([]usage.EventRow, 0, n)
	var at int64
	for range n {
		ev := usage.EventRow{Kind: "GRANTED", AgentID: string(r.bytes(r.uvarint()))}
		at += r.varint()
		ev.At = time.Unix(0, at).UTC()
		flags := r.bytes(1)
		if len(flags) == 0 {
			break
		}
		ev.PoolID, ev.Package, ev.AgentType, ev.HostID = str(), str(), str(), str()
		if flags[0]&openHasVersion != 0 {
			if i := ref(); r.err == nil {
				ev.AgentVersion = &table[i] // shared, never written through
			}
		}
		if flags[0]&openHasAppID != 0 {
			v := r.varint()
			ev.AppID = &v
		}
		if flags[0]&openHasAppName != 0 {
			if i := ref(); r.err == nil {
				ev.AppName = &table[i]
			}
		}
		if r.err != nil {
			break
		}
		if keep != nil && !keep[ev.PoolID] {
			continue
		}
		ev.HostName = ev.HostID
		if name, ok := names[ev.HostID]; ok {
			ev.HostName = name
		}
		out = append(out, ev)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}
