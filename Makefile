# licensing-controller: see README.md. The two commands a new user needs are
# `make run` and `make test`.

GO       ?= go
BIN      := bin/licensing-controller
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
SWAG_DIRS := internal/httpapi,internal/auth,internal/fault,internal/licensing,internal/engine,internal/usage,internal/report

.PHONY: run build test lint fuzz k8s-check swagger swagger-check screenshot vendor-ui bench bench-engine bench-series bench-analytics clean

## run: start the service on :8080 with the embedded store in ./data
run: build
	LC_LOG_FORMAT=$${LC_LOG_FORMAT:-text} ./$(BIN) serve

## build: static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/licensing-controller

## test: the whole suite with the race detector, on SQLite and on a throwaway PostgreSQL
test:
	./scripts/test.sh

## fuzz: run every fuzz target for its own execution budget (about 10 s each); crashers land in testdata/fuzz
# FUZZTIME=30s or FUZZTIME=1000000x overrides the budget of every target.
# The budgets are execution counts, not durations: a duration makes Go 1.26's
# fuzz coordinator race its own deadline on a loaded machine and fail with a
# bare "context deadline exceeded" and no failing input (golang/go#75804,
# fixed in 1.27). A count has no deadline to race. With a duration given,
# that signature still gets one more try.
FUZZTIME ?=
FUZZ_TARGETS := internal/httpapi:FuzzRegistrationBody:15000x internal/httpapi:FuzzAllocationBody:15000x \
	internal/httpapi:FuzzRuleBody:15000x internal/licensing:FuzzFilterMatch:80000x \
	internal/licensing:FuzzVerifyLicense:150000x
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$${FUZZTIME:-$${rest#*:}}; \
		echo "fuzz $$name ($$pkg, $$budget)"; \
		for try in 1 2; do \
			if $(GO) test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget >$$log 2>&1; then break; fi; \
			if [ $$try = 1 ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "  the fuzz coordinator's deadline race (golang/go#75804), no failing input: once more"; continue; fi; \
			cat $$log; exit 1; \
		done; \
		tail -n 1 $$log; \
	done

## lint: gofmt, go vet, staticcheck, stale Swagger docs and the Kubernetes manifests
lint: swagger-check k8s-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## k8s-check: render the kustomize base and overlay and validate them strictly with kubeconform against the vendored schemas
K8S_SCHEMAS := deployments/kubernetes/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json
k8s-check:
	@set -e; for k in deployments/kubernetes deployments/kubernetes-try; do \
		$(GO) tool kustomize build $$k | $(GO) tool kubeconform -strict -summary -schema-location '$(K8S_SCHEMAS)' -; \
	done

## screenshot: redraw docs/dashboard.png (the README's picture) with the browser test, in headless Chromium
screenshot:
	LC_UI_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(GO) test ./internal/httpapi -run '^TestDashboardInBrowser$$' -count=1

## vendor-ui: fetch the dashboard's chart library (uPlot, pinned, integrity-checked) from npm
vendor-ui:
	./scripts/vendor-uplot.sh

## swagger: regenerate docs/ from the handlers' annotations
swagger:
	$(GO) tool swag init --quiet -g router.go -d $(SWAG_DIRS) -o docs --packageName docs --parseInternal
	@gofmt -w docs/docs.go

## swagger-check: fail when the committed docs/ differ from the annotations
swagger-check:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(GO) tool swag init --quiet -g router.go -d $(SWAG_DIRS) -o $$tmp --packageName docs --parseInternal; \
	gofmt -w $$tmp/docs.go; \
	for f in docs.go swagger.json swagger.yaml; do \
		cmp -s $$tmp/$$f docs/$$f || { echo "docs/$$f is stale: run make swagger"; exit 1; }; \
	done; echo "swagger docs are current"

## bench-engine: build a 100 000-agent estate through the API on a throwaway PostgreSQL (fsync on; BENCH_ENGINE_FLAGS=--fsync=off) and measure the engine, against the PostgreSQL ceiling (pgbench) measured before and after
bench-engine: build
	$(GO) run ./cmd/lc-loadgen --binary ./$(BIN) $(BENCH_ENGINE_FLAGS)

## bench-series: 400 days of usage samples on a throwaway PostgreSQL: series query latencies and a 100 000-lease sampler tick
bench-series:
	$(GO) run ./cmd/lc-seriesbench $(BENCH_SERIES_FLAGS)

## bench-analytics: 90 days of events of 100 000 agents on 10 000 hosts (about 10 million) on a throwaway PostgreSQL: analytics latencies, one retention pass
bench-analytics:
	$(GO) run ./cmd/lc-analyticsbench $(BENCH_ANALYTICS_FLAGS)

## bench: load the built binary against a bare Gin baseline (auth overhead)
bench: build
	$(GO) run ./cmd/lc-bench --binary ./$(BIN)

clean:
	rm -rf bin data
