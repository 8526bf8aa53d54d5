# coinsaga: the two commands that matter are `make run` and `make test`.
GO      ?= go
BIN     ?= bin/coinsaga
RUNARGS ?=

.PHONY: run test build vet fmt bench crash clean

## run: start the whole service with embedded JetStream, SQLite and sandbox providers
run: build
	$(BIN) serve --sandbox $(RUNARGS)

## test: vet, then every test with the race detector (what CI runs)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

## build: the coinsaga binary in bin/
build:
	$(GO) build -o $(BIN) ./cmd/coinsaga

## bench: Go benchmarks of the hot paths (figures in docs/performance.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data
