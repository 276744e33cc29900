# jifen — the two commands are `make run` and `make test` (README.md).
SHELL := /bin/bash
CARGO ?= cargo
DISRUPTIVE := test(/^disruptive_/) | test(/::disruptive_/)

.PHONY: run reset test lint fmt build services bench clean-test-dbs tools k8s k8s-check image image-test

## Bring up the whole cluster on this machine with a demo city (Ctrl-C stops it).
run: services
	$(CARGO) build --workspace --bins
	scripts/run.sh

## Forget the local city: drop jifen's databases, RabbitMQ exchanges and queues, Redis keys and
## evidence files (nothing else; refuses while `make run` is up). The next `make run` seeds afresh.
reset:
	scripts/reset.sh

## Every test, against the real local PostgreSQL, RabbitMQ and Redis.
test: services tools lint k8s-check image-test
	scripts/dev-services.sh clean-test-dbs
	# The same targets (so the same features) as image-test's and nextest's builds: one build.
	$(CARGO) build --workspace --all-targets
	$(CARGO) nextest run --workspace --all-targets -E 'not ($(DISRUPTIVE))'
	# Tests that stop a shared server run alone, one at a time, after everything else.
	$(CARGO) nextest run --workspace --all-targets --profile disruptive -E '$(DISRUPTIVE)' --no-tests pass

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --workspace --bins

services:
	scripts/dev-services.sh up

clean-test-dbs:
	scripts/dev-services.sh clean-test-dbs

## Throughput and p99 of the hot paths (release build).
bench: services
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p jifen-bench -- all

## The container image with the five binaries (docs/images.md): docker, podman or buildah; offline
## with buildah when the base images cannot be pulled (JIFEN_IMAGE_OFFLINE=1 forces it).
image:
	CARGO="$(CARGO)" scripts/image.sh build

## The image's recipe built offline from the dev binaries, then checked: user, labels, commands,
## no shell, each binary runs inside it (docs/images.md).
image-test:
	CARGO="$(CARGO)" IMAGE_PROFILE=debug scripts/image.sh test

tools:
	@command -v cargo-nextest >/dev/null || $(CARGO) install cargo-nextest --locked

## Validate the Kubernetes manifests and alert rules offline (deploy/k8s/README.md, "Validation").
k8s-check:
	scripts/check-k8s.sh

## Render an overlay: make k8s OVERLAY=prod (or dev, prod/migrate).
OVERLAY ?= prod
k8s:
	@scripts/check-k8s.sh >&2
	@.tools/bin/kubectl kustomize deploy/k8s/overlays/$(OVERLAY)
