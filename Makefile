# Tollgate — run `make help` for the targets.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin/tollgate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FUZZTIME ?=
PKGS := ./...

# Tool versions, pinned: a new release may report new things, so upgrading
# one is a change of its own.
GOVULNCHECK_VERSION := v1.9.0
GOSEC_VERSION := v2.30.0
REDOCLY_VERSION := 2.77.0
# The vulnerability database govulncheck reads: a mirror, or file:///path
# of a local copy.
GOVULNDB ?= https://vuln.go.dev

# gosec: rules left out, each for a reason. Everything else is reported,
# and every #nosec in the code names its rule and says why.
#   G104 (unchecked errors): errcheck (make lint) checks them; gosec's hits
#     are Close calls on error paths, where the first error is the one
#     returned.
#   storage/conformance, G101: the contract tests' fixture secrets.
#   pkg/console, G124: the session cookies are always HttpOnly and
#     SameSite=Lax, and Secure whenever the request came over HTTPS (directly
#     or through a trusted proxy) or console.secure_cookies is set; gosec
#     cannot see the computed value. G710: the console redirects only to
#     paths that pass localPath (under /console/, no scheme, host, backslash
#     or dot segment).
#   storage/redis/keyslot.go, G115: uint32 of the shard count (1 or 16).
#   internal/fuzzrun: G204 (it runs the go command on the module's own
#     packages), G304 (it reads the budget file it is given and lists the
#     corpus directories go test writes).
#   internal/fleet and cmd/tollgate-seed are test and load tooling, not
#     built into the server: G204 (they start the tollgate processes they
#     test), G404 (a load mix is no secret), G704 (the test proxy forwards to
#     the instances it started).
#   cmd/tollgate-mutants is test tooling too: G204 (it runs the go test
#     commands of the repository's mutant list), G304 and G703 (it reads that
#     list and the source files the list names, and writes each mutated copy
#     into a temporary directory of its own).
GOSEC_EXCLUDE := G104
GOSEC_EXCLUDE_RULES := storage/conformance/.*:G101;pkg/console/.*:G124,G710;storage/redis/keyslot\.go:G115;internal/fleet/.*:G204,G404,G704;internal/fuzzrun/.*:G204,G304;cmd/tollgate-seed/.*:G404;cmd/tollgate-mutants/.*:G204,G304,G703

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/tollgate (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tollgate

.PHONY: run
run: ## run the server on the embedded default (SQLite + in-process tokens, ./data)
	$(GO) run ./cmd/tollgate serve

# go test's timeout is a hang detector, not a speed check: the end-to-end
# suites (e2e/) under -race passed the default 10m on a 2-core machine
# shared with other builds (TestHostileInput was running, nothing hung).
TEST_TIMEOUT ?= 30m

.PHONY: test
test: ## vet and run every test with the race detector (PostgreSQL and Redis suites run when reachable; CI=true requires them)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

.PHONY: test-race
test-race: test ## alias of test: tests always run with -race

.PHONY: test-short
test-short: ## run the tests without the race detector
	$(GO) test -count=1 $(PKGS)

MUTANTS ?=
QUICK ?=
.PHONY: test-mutations
test-mutations: ## break each rule of .ci/mutants.txt in turn (go -overlay, the tree untouched) and fail if its test still passes; MUTANTS=regexp picks some, QUICK=1 the quick ones
	CI=true $(GO) run ./cmd/tollgate-mutants -list .ci/mutants.txt $(if $(MUTANTS),-run '$(MUTANTS)') $(if $(QUICK),-quick)

.PHONY: test-faults
test-faults: ## fault injection: real tollgate processes under load while private PostgreSQL and Redis servers stop, crash and fill up
	$(GO) test -tags faults -count=1 -timeout 15m -run Fault -v ./cmd/tollgate/

SOAK_DURATION ?= $(or $(DURATION),90s)
.PHONY: soak
soak: ## hold a mixed load on three instances for DURATION (default 90s): errors, p99, memory and goroutines at start and end
	$(GO) run ./cmd/tollgate-soak -duration $(SOAK_DURATION)

.PHONY: fuzz
fuzz: ## run every fuzz target on its execution count in .ci/fuzz-budgets (FUZZTIME=30s gives each a duration instead)
	$(GO) run ./cmd/tollgate-fuzz -budgets .ci/fuzz-budgets -fuzztime '$(FUZZTIME)'

.PHONY: bench
bench: ## run the Go benchmarks and the load test against PostgreSQL + Redis (writes docs/performance.md)
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/... ./storage/... ./e2e/
	TOLLGATE_TEST_MEMORY=100000 $(GO) test -count=1 -run '^TestBytesPerToken(Cluster)?$$' -v ./storage/redis/
	TOLLGATE_TEST_MEMORY=1 $(GO) test -count=1 -run '^TestBytesPerCachedClient$$' -v ./storage/cache/
	TOLLGATE_TEST_SIZING=1 $(GO) test -count=1 -run '^TestPostgresConnectionsUnderLoad$$' -v ./e2e/
	bash .ci/bench.sh

.PHONY: bench-scale
bench-scale: ## load test with 100,000 clients and 1,000,000 live tokens against the same run without them
	SCALE=1 bash .ci/bench.sh

.PHONY: bench-otel
bench-otel: ## token throughput with tracing off and on (100% sampling, OTLP/HTTP to a local sink), interleaved
	bash .ci/bench-otel.sh

.PHONY: lint
# --allow-parallel-runners: another checkout linting on the same machine (the
# lock is per machine, not per tree) must not fail this run.
lint: ## run golangci-lint (config in .golangci.yml)
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.6.2 run --allow-parallel-runners

.PHONY: check-alerts
check-alerts: ## check the Prometheus alert rules and run their unit tests (promtool, from Debian's prometheus package)
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

COMPOSE_CHECK_ENV := TOLLGATE_TOKEN_SECRET=compose-check-not-a-secret TOLLGATE_PEPPER=compose-check-not-a-secret TOLLGATE_KEY_ENCRYPTION_KEY=0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c
.PHONY: check-compose
check-compose: ## validate docker-compose.yml with a real Compose (docker-compose config, with and without the observability profile)
	$(COMPOSE_CHECK_ENV) docker-compose -f docker-compose.yml config -q
	$(COMPOSE_CHECK_ENV) docker-compose -f docker-compose.yml --profile observability config -q

.PHONY: lint-openapi
lint-openapi: ## lint docs/openapi.yaml with Redocly CLI (pinned, from npm; config and turned-off rules in redocly.yaml)
	npx -y @redocly/cli@$(REDOCLY_VERSION) lint docs/openapi.yaml

.PHONY: helm-check
helm-check: ## lint, render and validate the Helm chart (helm, kubectl-validate: pinned in .ci/helm.sh, built into TOOLS_DIR)
	bash .ci/helm.sh

.PHONY: vuln
vuln: ## check the dependencies and the Go release for known vulnerabilities (govulncheck; GOVULNDB to use a mirror)
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db '$(GOVULNDB)' ./...

.PHONY: sec
sec: ## static security analysis (gosec; exclusions and their reasons in the Makefile)
	$(GO) run github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION) -quiet -exclude=$(GOSEC_EXCLUDE) \
	  -exclude-rules='$(GOSEC_EXCLUDE_RULES)' -nosec-require-rules -nosec-require-justification ./...

.PHONY: migrate
migrate: ## apply pending migrations to TOLLGATE_DATABASE_URL
	$(GO) run ./cmd/tollgate migrate

.PHONY: up
up: ## start PostgreSQL, Redis and Tollgate with docker compose (needs TOLLGATE_TOKEN_SECRET, TOLLGATE_PEPPER and TOLLGATE_KEY_ENCRYPTION_KEY)
	docker compose up -d --build

.PHONY: down
down: ## stop the docker compose stack
	docker compose down
