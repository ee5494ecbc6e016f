package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// The leases analytics answer one row per host, application and agent
// type: tens of thousands of rows and megabytes for a large estate. They
// are appended as JSON directly, byte for byte what encoding/json makes of
// []LeaseUsageDTO (TestLeasesJSONIsEncodingJSON), and streamed in chunks:
// reflection over the rows cost a quarter of the request.

// leasesChunk is how much is written to the client at a time.
const leasesChunk = 64 << 10

// writeLeasesJSON answers ls as a JSON array of LeaseUsageDTO.
func writeLeasesJSON(c *gin.Context, ls []usage.LeaseUsage) {
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(http.StatusOK)
	b := make([]byte, 0, leasesChunk+4096)
	b = append(b, '[')
	for i := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLeaseUsage(b, &ls[i])
		if len(b) >= leasesChunk {
			if _, err := c.Writer.Write(b); err != nil {
				return // the client is gone: nothing to answer
			}
			b = b[:0]
		}
	}
	b = append(b, ']')
	_, _ = c.Writer.Write(b)
}

// appendLeaseUsage appends l as LeaseUsageDTO's JSON.
func appendLeaseUsage(b []byte, l *usage.LeaseUsage) []byte {
	b = append(b, `{"agentType":`...)
	b = appendJSONString(b, l.AgentType)
	b = append(b, `,"agentVersion":`...)
	b = appendJSONString(b, l.AgentVersion)
	b = append(b, `,"packages":`...)
	if l.Packages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range l.Packages {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, p)
		}
		b = append(b, ']')
	}
	b = append(b, `,"usageHours":`...)
	b = appendJSONFloat(b, l.UsageHours)
	b = append(b, `,"host":{"id":`...)
	b = appendJSONString(b, l.HostID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, l.HostName)
	b = append(b, `},"application":`...)
	if l.AppID == nil && l.AppName == nil {
		return append(b, "null}"...)
	}
	b = append(b, `{"id":`...)
	if l.AppID == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *l.AppID, 10)
	}
	b = append(b, `,"name":`...)
	if l.AppName == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *l.AppName)
	}
	return append(b, "}}"...)
}

// appendJSONString appends s quoted as encoding/json quotes it. Printable
// ASCII but for the quote, the backslash and <, > and & (escaped for
// HTML) stands for itself; any other string (rare: non-ASCII names) goes
// through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // a string always encodes
				return append(b, `""`...)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64: the
// shortest decimal, in exponent form outside [1e-6, 1e21).
func appendJSONFloat(b []byte, f float64) []byte {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) || math.IsNaN(f) || math.IsInf(f, 0) {
		q, err := json.Marshal(f)
		if err != nil { // NaN and ±Inf: never usage hours
			return append(b, '0')
		}
		return append(b, q...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}
