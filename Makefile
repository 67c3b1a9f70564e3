# sidekey — one command for the whole suite: `make test`.
# It installs what the tests need when it is missing (Go tools through the
# module proxy via tools/go.mod; Debian packages with apt-get when run as root).

GO        ?= go
TOOLS     := $(GO) tool -modfile=tools/go.mod
FUZZTIME  ?= 5s
PKGS      := ./...

.PHONY: test deps lint unit fuzz bench demo build

test: deps lint fuzz chart docker-check unit ## everything CI runs (unit last: its summary closes the output)

deps: ## what the tests need: Go modules, pinned Go tools, redis-server (apt-get as root)
	@$(GO) mod download
	@cd tools && $(GO) mod download
	@scripts/install-deps.sh

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(TOOLS) staticcheck $(PKGS)

unit: ## all tests with the race detector; the full -v log is in .cache/unit.log
	@mkdir -p .cache
	@echo "go test -race -count=1 -timeout 15m -v $(PKGS)"
	@$(GO) test -race -count=1 -timeout 15m -v $(PKGS) > .cache/unit.log 2>&1; rc=$$?; \
	  grep -E '^(ok|FAIL|panic:)|^--- FAIL' .cache/unit.log; \
	  if [ $$rc -ne 0 ]; then echo "--- failing output ---"; grep -B2 -A30 -E '^\s*--- FAIL|^panic:|\[build failed\]' .cache/unit.log | head -400; \
	    grep -A60 -E '^WARNING: DATA RACE' .cache/unit.log | head -400; \
	    grep -B60 -E '^exit status|race detected outside of test' .cache/unit.log | head -200; fi; \
	  echo "unit: $$(grep -c -- '--- PASS' .cache/unit.log) passed, $$(grep -c -- '--- FAIL' .cache/unit.log) failed, $$(grep -c -- '--- SKIP' .cache/unit.log) skipped"; \
	  exit $$rc

fuzz: ## a short run of every fuzz target (seeds also run in `unit`)
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || \
	      { $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; exit 1; }; \
	  done; \
	done

bench: ## micro-benchmarks of the request path (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./proxy/ ./tokensource/

demo: ## the demo: simulated platforms behind the proxy on 127.0.0.1:8080
	$(GO) run . demo

VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

build: ## a static binary, as the Dockerfile builds it, stamped with VERSION (default: git describe)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o bin/sidekey .

.PHONY: chart docker-check

chart: ## the Helm chart and examples/kubernetes: helm lint, helm template, kubeconform, rendered-output checks
	GO=$(GO) scripts/check-chart.sh

docker-check: ## the Dockerfile's build command makes a static binary that serves /_sidekey/healthz
	GO=$(GO) scripts/check-docker-build.sh
