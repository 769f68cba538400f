# Orion's one entry point: `make demo` (install, build, run Orion on a real project) and `make test` (install, build, test).
SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages the project needs: the C toolchain it drives, bubblewrap for its action sandboxes, ccache for the benchmarks' anchor, and cmake and bear for the real-project corpus (scripts/corpus-baseline).
DEB_PACKAGES := gcc g++ make binutils ccache strace bubblewrap cmake bear
SOURCES := $(shell find src dag-extract scripts test -name '*.ts' -not -path '*/gen/*' 2>/dev/null) $(wildcard proto/orion/v1/*.proto) tsconfig.json buf.gen.yaml

.PHONY: install install-deb build test test-redis test-lua test-corpus demo bench bench-redis clean

install: install-deb node_modules/.installed

install-deb:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# tsc, then the bundle bin/orion loads (rolldown: the CLI and its packages in a few chunks, loaded as late as before).
dist/.built: node_modules/.installed $(SOURCES)
	npx buf generate
	npx tsc -p tsconfig.json
	rm -rf dist/bundle
	npx rolldown dist/src/cli/main.js --platform node --format esm --external better-sqlite3 --dir dist/bundle --log-level warn
	@touch $@

build: install dist/.built native/build/orion-spawn native/build/orion-cc native/build/orion-sh native/build/orion-build native/build/orion-limit native/build/liborion-trace.so

# The spawn server: Node asks it to start each tool, so no child is fork()ed from the large Node process.
native/build/orion-spawn: native/spawn/orion-spawn.c
	@mkdir -p $(@D)
	cc -O2 -Wall -o $@ $<

# The sandbox launcher: joins an action's pids cgroup and sets its rlimits, then execs bwrap.
native/build/orion-limit: native/spawn/orion-limit.c
	@mkdir -p $(@D)
	cc -O2 -Wall -Wextra -o $@ $<

# The agent's wire format on the client side, shared by the native clients below.
AGENT_WIRE := native/common/agent-wire.c native/common/agent-wire.h

# The `orion cc` client: forwards each compiler call to the local agent, so no compile pays Node's start-up.
native/build/orion-cc: native/cc/orion-cc.c $(AGENT_WIRE)
	@mkdir -p $(@D)
	cc -O2 -Wall -Wextra -Inative/common -o $@ $(filter %.c,$^)

# The SHELL make runs recipe lines with under `orion build`: asks the build what to do with each line.
native/build/orion-sh: native/sh/orion-sh.c $(AGENT_WIRE)
	@mkdir -p $(@D)
	cc -O2 -Wall -Wextra -Inative/common -o $@ $(filter %.c,$^)

# The `orion build` client: sends the build to the per-user agent when one runs (a warm build server), else runs Node.
native/build/orion-build: native/client/orion-build.c $(AGENT_WIRE)
	@mkdir -p $(@D)
	cc -O2 -Wall -Wextra -Inative/common -o $@ $(filter %.c,$^)

# The host-step tracer, preloaded into every process of a traced step: records the files each one touches (cheaper than strace).
native/build/liborion-trace.so: native/trace/orion-trace.c
	@mkdir -p $(@D)
	cc -O2 -Wall -Wextra -fPIC -shared -o $@ $< -ldl

test: build
	bash scripts/run-tests

# Opt-in: Redis 7.0.15 built cold and warm through orion build, each redis-server PINGed (minutes; fetches Redis once, as root).
test-redis: build
	ORION_TEST_REDIS=1 bash scripts/run-tests test/redis.e2e.test.ts test/redis-graph.e2e.test.ts

# Opt-in: 50 warm farm builds of Lua 5.4 (`make posix`; a head, two nodes, a fresh client cache each) must all pass (minutes; fetches Lua once, as root).
test-lua: build
	ORION_TEST_LUA=1 bash scripts/run-tests test/farm-race.e2e.test.ts

# Opt-in: the corpus of real C projects (scripts/fetch-corpus: zlib, lz4, hello, cJSON with CMake and with make), each
# built by orion build, checked, counted against bear and rebuilt warm (minutes; fetches the sources once, as root).
test-corpus: build
	ORION_TEST_CORPUS=1 bash scripts/run-tests test/corpus.e2e.test.ts

demo: build
	bash scripts/demo

bench: build
	bash scripts/bench-local

# orion build on Redis 7.0.15 against make -j2 and ccache, 3 rounds (one round took 14.5 min on 2 busy cores).
bench-redis: build
	bash scripts/bench-redis

clean:
	rm -rf dist src/gen
