package httpapi

import (
	"errors"
	"reflect"
	"testing"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// registrationBody is what an app agent sends when it registers.
const registrationBody = `{"agentId":"agent-41234","agentType":"JAVA","agentVersion":"24.7.0",` +
	`"licenseKey":"d7f1c1a0-6a2b-4c55-9f3e-2b1a0c9d8e77","host":{"id":"host-0412-team-12","vCpu":24},` +
	`"application":{"id":1234,"name":"app-1234"},"node":"node-412-3","containerId":"c412-3"}`

// The edge checks every JSON body twice: for hygiene before authentication
// and against the bound type's shape.
func BenchmarkCheckRegistrationBody(b *testing.B) {
	body := []byte(registrationBody)
	sh := shapeOf(reflect.TypeOf(&RegistrationRequest{}))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := checkJSON(body, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := checkJSON(body, sh); err != nil {
			b.Fatal(err)
		}
	}
}

// A syntax error names the value it is in, whatever the tokenizer.
func TestSyntaxErrorsNameTheValue(t *testing.T) {
	for body, field := range map[string]string{
		`{"name":`:            "body", // the value never started
		`{"a":"x`:             "a",    // a string cut short
		`[1,]`:                "[1]",
		`{"a":{"b":[1,2,}]}}`: "a.b[2]",
		`{"a" 1}`:             "a",
		`{"a":tru}`:           "a",
		"{\"a\":\"\x00\"}":    "a",
		`{"a":1}}`:            "body",
		`  `:                  "body",
	} {
		_, err := checkJSON([]byte(body), nil)
		var fe *fault.Error
		if !errors.As(err, &fe) || len(fe.Fields) != 1 || fe.Fields[0].Field != field {
			t.Errorf("%q: %v, want an error naming %s", body, err, field)
		}
	}
}
