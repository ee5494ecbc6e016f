//go:build ignore

// gen writes the JSON schemas kubeconform validates the manifests with
// (make lint), so that validation needs no network: the kinds the
// manifests use, from the Kubernetes OpenAPI spec, and ServiceMonitor from
// the prometheus-operator CRD. Run it from the repository root when a kind
// is added or the Kubernetes version moves:
//
//	go mod download k8s.io/kubernetes@v1.31.4 github.com/prometheus-operator/prometheus-operator@v0.80.1
//	go run deployments/kubernetes/schemas/gen.go \
//	  $(go env GOMODCACHE)/k8s.io/kubernetes@v1.31.4/api/openapi-spec/swagger.json \
//	  $(go env GOMODCACHE)/github.com/prometheus-operator/prometheus-operator@v0.80.1/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml
//
// Schemas are strict (no unknown fields), as kubeconform -strict expects;
// int-or-string and quantities accept both forms.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// kinds: file name (kubeconform's {{.ResourceKind}}{{.KindSuffix}}) and definition.
var kinds = map[string]string{
	"deployment-apps-v1":            "io.k8s.api.apps.v1.Deployment",
	"statefulset-apps-v1":           "io.k8s.api.apps.v1.StatefulSet",
	"service-v1":                    "io.k8s.api.core.v1.Service",
	"configmap-v1":                  "io.k8s.api.core.v1.ConfigMap",
	"secret-v1":                     "io.k8s.api.core.v1.Secret",
	"poddisruptionbudget-policy-v1": "io.k8s.api.policy.v1.PodDisruptionBudget",
}

const out = "deployments/kubernetes/schemas"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run gen.go swagger.json servicemonitors-crd.yaml")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	check(err)
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	check(json.Unmarshal(raw, &spec))
	for file, def := range kinds {
		defs := map[string]any{}
		collect(spec.Definitions, def, defs)
		root := strict(clone(spec.Definitions[def])).(map[string]any)
		delete(defs, def)
		for k, v := range defs {
			defs[k] = strict(v)
		}
		root["definitions"] = defs
		root["$schema"] = "http://json-schema.org/draft-07/schema#"
		write(file, root)
	}
	crd, err := os.ReadFile(os.Args[2])
	check(err)
	var c struct {
		Spec struct {
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	check(yaml.Unmarshal(crd, &c))
	for _, v := range c.Spec.Versions {
		s := strict(v.Schema.OpenAPIV3Schema).(map[string]any)
		s["$schema"] = "http://json-schema.org/draft-07/schema#"
		write("servicemonitor-monitoring-"+v.Name, s)
	}
}

// collect adds def and every definition it refers to.
func collect(all map[string]map[string]any, def string, into map[string]any) {
	if _, ok := into[def]; ok {
		return
	}
	into[def] = clone(all[def])
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				collect(all, strings.TrimPrefix(ref, "#/definitions/"), into)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(all[def])
}

// strict forbids unknown fields of objects with properties, and accepts
// both forms of int-or-string and quantities.
func strict(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = strict(e)
		}
		if f, _ := x["format"].(string); f == "int-or-string" || x["x-kubernetes-int-or-string"] == true {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		if _, ok := x["properties"]; ok {
			if _, set := x["additionalProperties"]; !set && x["x-kubernetes-preserve-unknown-fields"] != true {
				x["additionalProperties"] = false
			}
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = strict(e)
		}
	}
	return v
}

func clone(v any) any {
	b, err := json.Marshal(v)
	check(err)
	var out any
	check(json.Unmarshal(b, &out))
	return out
}

func write(name string, schema map[string]any) {
	// Quantities (resource.Quantity) are strings or numbers.
	if defs, ok := schema["definitions"].(map[string]any); ok {
		if _, ok := defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]; ok {
			defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{
				"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
		}
	}
	b, err := json.MarshalIndent(schema, "", " ")
	check(err)
	check(os.WriteFile(filepath.Join(out, name+".json"), append(b, '\n'), 0o644))
	fmt.Println("wrote", name+".json")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
