package store

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/lcorp/licensing-controller/internal/engine"
)

// usageDecoder turns the wire values of grouped-usage rows into
// engine.UsageRows. A query reads thousands of rows whose strings repeat
// from row to row (agent types and versions, pools, licence keys,
// applications, packages): each distinct value becomes one string for the
// whole query, where scanning made a string, and a pointer, per row and
// column (a quarter of the answer's CPU went to pgx's reflective scans and
// their allocations). Hosts, nodes and containers are a few agents' each:
// looking them up would cost more than it saves.
type usageDecoder struct {
	interned
	formats []int16
}

func newUsageDecoder() *usageDecoder { return &usageDecoder{interned: newInterned()} }

// usageColumnCount is how many columns usageColumns names.
const usageColumnCount = 14

// scan decodes the current row of rows (usageColumns) into r.
func (d *usageDecoder) scan(rows pgx.Rows, r *engine.UsageRow) error {
	if d.formats == nil {
		fds := rows.FieldDescriptions()
		if len(fds) != usageColumnCount {
			return fmt.Errorf("grouped usage: %d columns, want %d", len(fds), usageColumnCount)
		}
		d.formats = make([]int16, len(fds))
		for i, fd := range fds {
			d.formats[i] = fd.Format
		}
	}
	v := rows.RawValues()
	var err error
	r.AgentType, r.AgentVersion, r.PoolKind, r.PoolID = d.str(v[0]), d.ptr(v[1]), d.str(v[2]), d.str(v[3])
	r.LicenseKey, r.HostID = d.str(v[4]), string(v[5])
	if r.AppID, err = d.int8(v[6], 6); err != nil {
		return err
	}
	r.AppName, r.Node, r.ContainerID = d.ptr(v[7]), own(v[8]), own(v[9])
	if r.HostName = r.HostID; string(v[10]) != r.HostID { // most hosts are named by their id
		r.HostName = string(v[10])
	}
	if r.HostVCPU, err = d.int8(v[11], 11); err != nil {
		return err
	}
	r.HostFallback = v[12] != nil
	r.HostPackage, r.HostUnits = "", 0
	if r.HostFallback {
		units, err := d.int8(v[13], 13)
		switch {
		case err != nil:
			return err
		case units == nil:
			return fmt.Errorf("grouped usage: a fallback charge without units")
		}
		r.HostPackage, r.HostUnits = d.str(v[12]), *units
	}
	return nil
}

// own is a value of its own (nil for NULL).
func own(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// int8 decodes a bigint of column i (nil for NULL), in either wire
// format, one pointer per distinct value.
func (d *usageDecoder) int8(b []byte, i int) (*int64, error) {
	if b == nil {
		return nil, nil
	}
	var n int64
	switch d.formats[i] {
	case pgx.BinaryFormatCode:
		if len(b) != 8 {
			return nil, fmt.Errorf("grouped usage: column %d: %d bytes for a bigint", i, len(b))
		}
		n = int64(binary.BigEndian.Uint64(b))
	default:
		var err error
		if n, err = strconv.ParseInt(string(b), 10, 64); err != nil {
			return nil, fmt.Errorf("grouped usage: column %d: %w", i, err)
		}
	}
	return d.int(n), nil
}
