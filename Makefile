# parley — the two commands a new user needs:
#   make run    runs the server on its embedded defaults (http://127.0.0.1:8080)
#   make test   runs every test (installs missing system packages first)
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/parley

.PHONY: run test build bench setup setup-test vet fmt clean

run: setup build
	./$(BIN) serve

build:
	$(GO) build -o $(BIN) ./cmd/parley

test: setup-test
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -timeout 20m ./...

bench: setup build
	$(GO) test -run '^$$' -bench . -benchmem ./media/... ./telephony/... ./dialog/...

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

clean:
	rm -rf bin
