package licensing

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Filter types and operators (API.md §2).
const (
	FilterApplication = "APPLICATION"
	FilterHost        = "HOST"

	OpIDEquals   = "ID_EQUALS"
	OpEquals     = "EQUALS"
	OpStartsWith = "STARTS_WITH"
	OpEndsWith   = "ENDS_WITH"
	OpContains   = "CONTAINS"
	OpRegex      = "REGEX"
	// OpNameEquals compares a host's name (EQUALS on HOST compares its id,
	// as allocation filters do); licence-rule conditions on the machine
	// name use it.
	OpNameEquals = "NAME_EQUALS"
)

// Operators lists the filter operators.
var Operators = []string{OpIDEquals, OpEquals, OpStartsWith, OpEndsWith, OpContains, OpRegex, OpNameEquals}

// Filter admits agents by application or host.
type Filter struct {
	ID       string
	Type     string
	Operator string
	Value    string
}

// String is the filter as explanations show it: "APPLICATION ID_EQUALS 18156".
func (f Filter) String() string { return f.Type + " " + f.Operator + " " + f.Value }

// Subject is what filters look at. HasApp is false for agents that report
// no application (machine, network agents).
type Subject struct {
	HasApp   bool
	AppID    int64
	AppName  string
	HostID   string
	HostName string
}

// Matcher is a compiled set of filters (allocation filters or rule constraints).
type Matcher struct {
	app, host []compiled
}

type compiled struct {
	f  Filter
	re *regexp.Regexp
}

// filterErrors returns every problem of filters (allocation filters or rule
// constraints): values that are empty or too long, then the first filter
// that does not compile.
func filterErrors(prefix string, filters []Filter) []fault.FieldError {
	var fields []fault.FieldError
	for i, f := range filters {
		if f.Value == "" || len(f.Value) > 1024 {
			fields = append(fields, fault.FieldError{Field: fmt.Sprintf("%s[%d].value", prefix, i), Message: "must be 1-1024 characters"})
		}
	}
	if _, err := CompileFilters(prefix, filters); err != nil {
		if fe, ok := fault.As(err); ok {
			fields = append(fields, fe.Fields...)
		}
	}
	return fields
}

// CompileFilters checks and compiles filters. The error names the field
// (prefix[i].value ...) of the first bad filter.
func CompileFilters(prefix string, filters []Filter) (Matcher, error) {
	var m Matcher
	for i, f := range filters {
		c := compiled{f: f}
		field := fmt.Sprintf("%s[%d]", prefix, i)
		switch f.Operator {
		case OpIDEquals, OpEquals, OpStartsWith, OpEndsWith, OpContains, OpNameEquals:
		case OpRegex:
			re, err := regexp.Compile(f.Value)
			if err != nil {
				return Matcher{}, fault.Invalid(field+".value", "is not a valid regular expression: "+err.Error())
			}
			c.re = re
		default:
			return Matcher{}, fault.Invalid(field+".operator", "must be one of "+strings.Join(Operators, ", "))
		}
		switch f.Type {
		case FilterApplication:
			if f.Operator == OpIDEquals {
				if _, err := strconv.ParseInt(f.Value, 10, 64); err != nil {
					return Matcher{}, fault.Invalid(field+".value", "must be an integer application id with ID_EQUALS")
				}
			}
			m.app = append(m.app, c)
		case FilterHost:
			m.host = append(m.host, c)
		default:
			return Matcher{}, fault.Invalid(field+".type", "must be APPLICATION or HOST")
		}
	}
	return m, nil
}

// Match reports whether s is admitted and which filters matched: for each
// type that has filters, at least one of them must match (OR within a type,
// AND across types). Subjects without an application are judged by HOST
// filters only. No filters admit everything.
func (m Matcher) Match(s Subject) (bool, []string) {
	var matched []string
	if s.HasApp && len(m.app) > 0 {
		hit := false
		for _, c := range m.app {
			if c.matches(s) {
				hit = true
				matched = append(matched, c.f.String())
			}
		}
		if !hit {
			return false, nil
		}
	}
	if len(m.host) > 0 {
		hit := false
		for _, c := range m.host {
			if c.matches(s) {
				hit = true
				matched = append(matched, c.f.String())
			}
		}
		if !hit {
			return false, nil
		}
	}
	return true, matched
}

func (c compiled) matches(s Subject) bool {
	var subject string
	switch {
	case c.f.Type == FilterApplication && c.f.Operator == OpIDEquals:
		return strconv.FormatInt(s.AppID, 10) == c.f.Value
	case c.f.Type == FilterApplication:
		subject = s.AppName
	case c.f.Operator == OpIDEquals || c.f.Operator == OpEquals:
		return s.HostID == c.f.Value
	default:
		subject = s.HostName
	}
	switch c.f.Operator {
	case OpEquals, OpNameEquals:
		return subject == c.f.Value
	case OpStartsWith:
		return strings.HasPrefix(subject, c.f.Value)
	case OpEndsWith:
		return strings.HasSuffix(subject, c.f.Value)
	case OpContains:
		return strings.Contains(subject, c.f.Value)
	case OpRegex:
		return c.re.MatchString(subject)
	}
	return false
}
