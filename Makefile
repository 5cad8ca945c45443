# bcship — build and test entry points. `make test` is what CI runs.
#
# The test target installs what it needs when it is missing (Debian, as
# root): clang/lld/llvm to rebuild and check test objects, qemu-user-static
# to run the arm64 tests, libxxhash-dev for the third-party test kernel.
# Binaries are always built with CGO_ENABLED=0.

GO        ?= go
# A budget of executions, not of time: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" when
# the time runs out mid-execution (golang/go#75804, fixed in Go 1.27; seen
# here on FuzzBundleRead). 150000 executions take 2–9 s per target here.
FUZZTIME  ?= 150000x
QEMU_ARM64 ?= qemu-aarch64-static
# clang-19/llvm-19 give the toolchain tests a second, newer LLVM (bitcode from
# a newer producer must be refused by an older llc); gcc is what go test
# -race needs (the race runtime links through cgo; bcship itself has none).
# qemu-system-x86/busybox-static boot the soft-RoCE VM (rxe-test);
# libibverbs-dev lets the uverbs ABI test check IBV_* constants too;
# ucx-utils gives bench invoke its UCX baseline (ucx_perftest ucp_am_lat).
APT_PKGS  := clang lld llvm clang-19 llvm-19 qemu-user-static libxxhash-dev gcc \
             qemu-system-x86 busybox-static libibverbs-dev ucx-utils

# Fuzz targets, as package:Target. go test fuzzes one target at a time.
FUZZ := ./loader:FuzzLoad ./wire:FuzzDecode ./wire:FuzzReadFrame ./bundle:FuzzBundleRead ./verbs:FuzzQueue \
        ./bundle:FuzzPayload ./internal/hostrt:FuzzParseOutbox ./transport/rdma:FuzzDecodeCtrl ./transport/shm:FuzzReader ./transport/shm:FuzzDecodeCtrl ./transport/shm:FuzzParseHeader ./transport/tcp:FuzzRecvBuf

.PHONY: all build bcshipd-arm64 test deps vet fmt-check unit arm64 rxe-test rxe-bench fuzz cross testdata clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o bcship ./cmd/bcship

# bcshipd-arm64 builds the static node agent for aarch64 firmware images
# (README: "Embedding bcshipd in a firmware image") and prints its size;
# the target is <= 8 MiB.
bcshipd-arm64:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o bcshipd-arm64 ./cmd/bcshipd
	@size=$$(stat -c %s bcshipd-arm64); \
	echo "bcshipd-arm64: $$size bytes ($$(awk "BEGIN{printf \"%.2f\", $$size/1048576}") MiB; target <= 8 MiB)"

# deps installs the tools the tests need when any is missing.
deps:
	@missing=""; \
	command -v clang >/dev/null || missing="$$missing clang"; \
	command -v ld.lld >/dev/null || missing="$$missing lld"; \
	command -v llvm-objcopy >/dev/null || missing="$$missing llvm"; \
	command -v $(QEMU_ARM64) >/dev/null || missing="$$missing qemu-user-static"; \
	test -f /usr/include/xxhash.h || missing="$$missing libxxhash-dev"; \
	command -v clang-19 >/dev/null || missing="$$missing clang-19"; \
	command -v llc-19 >/dev/null || missing="$$missing llvm-19"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86"; \
	dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	test -f /usr/include/infiniband/verbs.h || missing="$$missing libibverbs-dev"; \
	command -v ucx_perftest >/dev/null || missing="$$missing ucx-utils"; \
	if [ -n "$$missing" ]; then \
		echo "make: installing$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PKGS) >/dev/null || \
		{ echo "make: could not install$$missing; install them with: apt-get install -y $(APT_PKGS)"; exit 1; }; \
	fi

test: deps vet fmt-check cross unit arm64 rxe-test fuzz
	@echo "make test: all passed"

vet:
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Every binary builds without cgo for both target architectures.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build ./...

unit:
	CGO_ENABLED=0 $(GO) test -count=1 ./...
	CGO_ENABLED=1 $(GO) test -count=1 -race ./exec/... . ./transport/... ./wire/... ./xrdma/...

# The same tests, compiled for arm64 and run under qemu-user.
arm64:
	BCSHIP_EMULATED=qemu-user CGO_ENABLED=0 GOARCH=arm64 $(GO) test -count=1 -exec $(QEMU_ARM64) ./...

# rxe-test runs the verbs tests in a qemu (TCG) VM with soft-RoCE
# (internal/cmd/rxevm): it fetches the Debian kernel package when missing
# and boots one VM per test binary; -p 1 keeps one VM at a time. The
# harness copies its own static binary in as /init, hence CGO_ENABLED=0.
rxe-test:
	CGO_ENABLED=0 $(GO) test -count=1 -p 1 -exec "$(GO) run $(CURDIR)/internal/cmd/rxevm --" ./verbs/... ./transport/rdma/...
	CGO_ENABLED=0 $(GO) test -count=1 -p 1 -run 'TestRdma' -exec "$(GO) run $(CURDIR)/internal/cmd/rxevm --" . ./cmd/bcship ./cmd/bcshipd

# rxe-bench compares verbs latency with perftest (ib_send_lat, ib_write_lat,
# ib_read_lat) in the same soft-RoCE VM boot; --with-perftest downloads
# perftest and its shared libraries (cached) into the initramfs. Rounds
# alternate baseline and ours (BCSHIP_LAT_ROUNDS, default 3); medians printed.
rxe-bench:
	CGO_ENABLED=0 $(GO) test -count=1 -p 1 -run '^$$' -bench 'BenchmarkLatency' -benchtime 10000x \
		-exec "$(GO) run $(CURDIR)/internal/cmd/rxevm --with-perftest --" ./verbs/

fuzz:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x -parallel 2 $$pkg; \
	done

# testdata regenerates the committed test and runtime objects with clang.
testdata: deps
	$(GO) run ./internal/cmd/gentestdata

clean:
	rm -f bcship bcshipd bcshipd-arm64
