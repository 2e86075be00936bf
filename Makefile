# tofu-oci-mirror developer targets. `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/tofu-oci-mirror
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Acceptance tests build OpenTofu itself (a few minutes the first time).
TEST_TIMEOUT ?= 30m

.PHONY: all build test unit e2e lint demo tools fuzz clean

all: lint build test

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tofu-oci-mirror

# Everything: unit, integration (in-process registry, test upstream) and
# acceptance with the real tofu binary, plus the seed corpora of the fuzz targets;
# then the deploy/ module's checks of the Kubernetes, systemd and Docker examples.
test: tools
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd deploy && $(GO) test -count=1 ./...

# Only the acceptance scenarios with the real OpenTofu CLI.
e2e: tools
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run 'TestAcceptance' -v ./sync/acceptance/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^testdata/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...

# The test binaries: OpenTofu and a minimal real provider, cached under .cache/bin.
tools:
	./scripts/build-test-tools.sh

# The whole flow, offline: a test upstream and an in-process registry.
demo:
	$(GO) test -count=1 -run TestDemo -v ./cmd/tofu-oci-mirror/ | grep -v -e "^=== RUN" -e "^--- PASS" -e "^PASS" -e "^ok "

# Every fuzz target in the repository, FUZZTIME each (see scripts/fuzz.sh;
# FUZZ=regexp picks targets). `make test` already replays the seed corpora.
FUZZTIME         ?= 20s
FUZZMINIMIZETIME ?= 5x
FUZZ             ?= .
fuzz:
	GO='$(GO)' FUZZTIME='$(FUZZTIME)' FUZZMINIMIZETIME='$(FUZZMINIMIZETIME)' FUZZ='$(FUZZ)' ./scripts/fuzz.sh

# The benchmark suite of issue 7 against ORAS, regctl and the physical floor,
# and issue 15's over an emulated WAN (bench/wan); writes bench/RESULTS.md.
# BENCH_* variables shrink it, see bench/README.md.
.PHONY: bench
bench:
	./scripts/build-test-tools.sh bench
	TOFU_BENCH=1 $(GO) test -count=1 -timeout 90m -run '^TestBench$$' -v ./bench/

clean:
	rm -rf bin mirror
