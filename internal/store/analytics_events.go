package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// analyticsRows reads the events of a query of analyticsColumns.
func (e engineStore) analyticsRows(ctx context.Context, reset func(), each func(*usage.EventRow), query string, args ...any) error {
	var dec eventDecoder
	err := e.s.eachRawRow(ctx, query, args, reset, func(fds []pgconn.FieldDescription, vals [][]byte) error {
		var r usage.EventRow
		if err := dec.decode(fds, vals, &r); err != nil {
			return err
		}
		each(&r)
		return nil
	}, func(scan func(...any) error) error {
		// A new row each time: its pointers are the caller's to keep.
		var r usage.EventRow
		if err := scan(&r.At, &r.Kind, &r.PoolID, &r.Package, &r.Units, &r.AgentID, &r.AgentType, &r.AgentVersion,
			&r.HostID, &r.HostName, &r.AppID, &r.AppName, &r.Reason); err != nil {
			return err
		}
		r.At = r.At.UTC()
		each(&r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("analytics events: %w", translate(err))
	}
	return nil
}

// eventDecoder decodes analyticsColumns from PostgreSQL's binary values.
// A day of a large estate's events is hundreds of thousands of rows with
// few distinct values but the agent ids: each distinct string (and pointer
// to one) is made once per read. The pointers of the rows it makes are
// shared between rows: they are read, never written through.
type eventDecoder struct {
	checked bool
	interned
}

// The column types decoded: the times, the integers, the strings.
const (
	eventColumns    = 13
	oidTimestamptz  = 1184
	oidInt8         = 20
	oidText         = 25
	oidVarchar      = 1043
	formatBinary    = 1
	pgEpochUnixSecs = 946684800 // 2000-01-01
)

func (d *eventDecoder) check(fds []pgconn.FieldDescription) bool {
	if len(fds) != eventColumns {
		return false
	}
	for i, fd := range fds {
		switch i {
		case 0:
			if fd.DataTypeOID != oidTimestamptz || fd.Format != formatBinary {
				return false
			}
		case 4, 10:
			if fd.DataTypeOID != oidInt8 || fd.Format != formatBinary {
				return false
			}
		default: // text has the same bytes in both formats
			if fd.DataTypeOID != oidText && fd.DataTypeOID != oidVarchar {
				return false
			}
		}
	}
	return true
}

func (d *eventDecoder) decode(fds []pgconn.FieldDescription, vals [][]byte, r *usage.EventRow) error {
	if !d.checked {
		if !d.check(fds) {
			return errNotRaw
		}
		d.checked = true
		d.interned = newInterned()
	}
	if len(vals) != eventColumns || len(vals[0]) != 8 || len(vals[4]) != 8 {
		return fmt.Errorf("event row of %d columns: %w", len(vals), errRawValue)
	}
	us := int64(binary.BigEndian.Uint64(vals[0]))
	r.At = time.Unix(pgEpochUnixSecs+us/1_000_000, us%1_000_000*1000).UTC() // a negative remainder is carried
	r.Kind = d.str(vals[1])
	r.PoolID = d.str(vals[2])
	r.Package = d.str(vals[3])
	r.Units = int64(binary.BigEndian.Uint64(vals[4]))
	r.AgentID = string(vals[5]) // about as many as rows: not kept
	r.AgentType = d.str(vals[6])
	r.AgentVersion = d.ptr(vals[7])
	r.HostID = d.str(vals[8])
	r.HostName = d.str(vals[9])
	switch v := vals[10]; {
	case v == nil:
	case len(v) != 8:
		return fmt.Errorf("app_id of %d bytes: %w", len(v), errRawValue)
	default:
		r.AppID = d.int(int64(binary.BigEndian.Uint64(v)))
	}
	r.AppName = d.ptr(vals[11])
	r.Reason = d.str(vals[12])
	return nil
}

// errRawValue: a value is not what its column's type encodes.
var errRawValue = errors.New("undecodable value")
