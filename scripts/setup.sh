#!/usr/bin/env bash
# Installs what parley needs on a Debian machine, skipping what is present.
#   scripts/setup.sh run    packages to build and run the server
#   scripts/setup.sh test   ... plus what the tests need (flite CLI, sox, a PostgreSQL server)
# Idempotent: run it as often as you like. Needs root (or sudo) only when
# something is missing.
set -euo pipefail

want=${1:-run}
run_pkgs=(gcc pkg-config libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us flite1-dev libopus-dev libopusfile-dev)
test_pkgs=(flite sox chromium)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
pkgs=("${run_pkgs[@]}")
[ "$want" = test ] && pkgs+=("${test_pkgs[@]}")
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq
	as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go: the module needs the go.mod version. Use the one on PATH or in
# /usr/local/go; otherwise fetch that exact toolchain from the Go module proxy.
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$(dirname "$0")/../go.mod")
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "setup: no Go found; installing go$gover from the Go module proxy" >&2
	dpkg-query -W -f='${Status}' golang-go 2>/dev/null | grep -q "install ok installed" || {
		as_root apt-get update -qq; as_root apt-get install -y -qq --no-install-recommends golang-go ca-certificates >/dev/null; }
	tmp=$(mktemp -d)
	(cd "$tmp" && GOPATH="$tmp/gopath" GOFLAGS=-modcacherw /usr/bin/go mod download -x "golang.org/toolchain@v0.0.1-go$gover.linux-$(dpkg --print-architecture)" >/dev/null 2>&1)
	as_root mkdir -p /usr/local/go
	as_root cp -r "$tmp"/gopath/pkg/mod/golang.org/toolchain@v0.0.1-go$gover.linux-*/. /usr/local/go/
	rm -rf "$tmp"
fi

if [ "$want" = test ]; then
	# The store tests need a PostgreSQL server: use PARLEY_TEST_POSTGRES_URL
	# or 127.0.0.1:5432; install and start one when none answers.
	url=${PARLEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
	hostport=$(echo "$url" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')
	host=${hostport%:*}; port=${hostport##*:}; [ "$port" = "$hostport" ] && port=5432
	if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
		echo "setup: no PostgreSQL answers on $host:$port; installing and starting one" >&2
		dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed" || {
			as_root apt-get update -qq; DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
		ver=$(ls /etc/postgresql | sort -n | tail -1)
		hba=/etc/postgresql/$ver/main/pg_hba.conf
		# Local test server only: trust loopback connections, as the test URL has no password.
		grep -q "parley-test" "$hba" || as_root sed -i '1i host all all 127.0.0.1/32 trust # parley-test\nhost all all ::1/128 trust # parley-test' "$hba"
		as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
		for _ in $(seq 1 30); do (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && break; sleep 0.5; done
	fi
fi
