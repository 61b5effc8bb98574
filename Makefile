# knest: targets are thin; the work is in hack/.
SHELL := /usr/bin/env bash

.PHONY: all demo run build test test-unit test-syncer test-integration test-e2e test-e2e-kind verify release conformance conformance-ci bench-startup bench-sleep bench-sleep-syncing bench-devcluster bench-sync bench-inprocess bench-density clean

all: build

## demo: a local host cluster (devcluster) with tenant 'demo', in the foreground
demo: build
	bin/knest dev up --dir "$${KNEST_DEV_DIR:-$(CURDIR)/_output/dev}" --tenants "$${KNEST_TENANTS:-demo}"

## run: start a tenant control plane on a temp dir (foreground)
run: build
	hack/run.sh

## build: bin/knestd, bin/knest, bin/knest-dev, bin/knest-supervisor and bin/kubectl (with the Kubernetes version stamped in)
build:
	hack/build.sh

## test: unit, integration and e2e tests (what CI runs)
test: build
	hack/test.sh

## test-unit: the fast tests only (no control plane processes)
test-unit:
	go test -short ./...

## test-syncer: the syncer's controllers in the test process against a host and a tenant API server it starts (no bin/ needed)
test-syncer:
	go test ./pkg/syncer/...

## test-integration: tests that drive real knestd processes
test-integration: build
	KNEST_BIN_DIR=$(CURDIR)/bin go test -count=1 -p 1 -run 'TestIntegration' ./test/integration/...

## test-e2e: the ginkgo suite against a devcluster (or $$KNEST_E2E_HOST_KUBECONFIG)
test-e2e: build
	KNEST_BIN_DIR=$(CURDIR)/bin go test -count=1 -timeout 30m ./e2e/... -args -ginkgo.v

## test-e2e-kind: the same suite on a kind cluster (needs a privileged Docker engine)
test-e2e-kind:
	hack/e2e-kind.sh

## conformance: Kubernetes' [Conformance] specs on the devcluster host and a hard and a soft tenant (hack/conformance.sh; args in CONFORMANCE_ARGS)
conformance: build
	hack/conformance.sh $(CONFORMANCE_ARGS)

## conformance-ci: the CI subset: [sig-api-machinery] [Conformance] on a hard tenant, gated by hack/conformance/allowed-sig-api-machinery.txt
conformance-ci: build
	hack/conformance.sh --targets tenant-hard --focus '\[sig-api-machinery\].*\[Conformance\]' \
		--skip-file hack/conformance/skip-devcluster.txt --allowed hack/conformance/allowed-sig-api-machinery.txt \
		--timeout 40m --out _output/conformance-ci

## release: CLI for linux/darwin/windows x amd64/arm64, knestd for linux, chart, SBOM, SHA256SUMS in _output/release (RELEASE_ARGS: --push oci://..., --allow-missing-cli)
release:
	hack/release.sh $(RELEASE_ARGS)

## verify: gofmt, go vet, go mod tidy, generated files (manifests/)
verify:
	hack/verify.sh

## bench-startup: cold start, restart, idle RSS and binary size as JSON
bench-startup: build
	go run ./hack/bench/startup --knestd bin/knestd --runs 3

## bench-sleep: a sleeping tenant's RSS and CPU (knest-supervisor) and its wake to first answer, as JSON
bench-sleep: build
	go run ./hack/bench/sleep --supervisor bin/knest-supervisor --knestd bin/knestd --runs 3

## bench-sleep-syncing: the same for a syncing tenant (devcluster host, pool nodes, 3 running pods) and its pods' return, as JSON
bench-sleep-syncing: build
	go run ./hack/bench/sleep --syncing --knest-dev bin/knest-dev --supervisor bin/knest-supervisor --knestd bin/knestd --runs 3 --pods 3

## bench-devcluster: devcluster start to nodes Ready and to a 10-pod Deployment Running, RSS
bench-devcluster: build
	go run ./hack/bench/devcluster --knest-dev bin/knest-dev

## bench-sync: 1000 pods through the syncer vs created directly on the host with the same QPS budget, as JSON
bench-sync: build
	go run ./hack/bench/sync --knest-dev bin/knest-dev --knestd bin/knestd

## bench-inprocess: what knestd's own clients pay per request to their API server, in-process vs over loopback TLS, as JSON
bench-inprocess:
	go run ./hack/bench/inprocess

## bench-density: a devcluster plus N idle tenants (knestd, syncer, the chart's host objects): per-tenant RSS and idle CPU, where the machine runs out, as JSON (args in DENSITY_ARGS, e.g. --tenants 10 --step 5)
bench-density: build
	go run ./hack/bench/density --knest-dev bin/knest-dev --knestd bin/knestd $(DENSITY_ARGS)

clean:
	rm -rf bin _output
