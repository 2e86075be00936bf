#!/usr/bin/env bash
# build-test-tools.sh builds the real binaries the acceptance tests run:
#
#   .cache/bin/tofu                     OpenTofu CLI, pinned in testdata/tofu/go.mod (oldest with OCI, 1.10.x)
#   .cache/bin/tofu-1.12                OpenTofu CLI, pinned in testdata/tofu-1.12/go.mod (newest release line)
#   .cache/bin/terraform-provider-echo  minimal provider from testdata/provider-echo
#
# and, for the benchmarks (`make bench`), the tools pinned in bench/tools/go.mod:
#
#   .cache/bin/registry                 CNCF distribution registry (v3)
#   .cache/bin/oras                     ORAS CLI
#   .cache/bin/regctl                   regclient's CLI
#
# Usage: scripts/build-test-tools.sh [tofu] [tofu-1.12] [provider-echo] [registry] [oras] [regctl] [bench]
# (default: tofu, tofu-1.12 and provider-echo; bench means registry, oras and regctl)
#
# Needs only the Go toolchain and the Go module proxy. A tool is rebuilt only
# when its inputs change: the script keeps a stamp next to each binary holding
# a SHA-256 over the module's go.mod, go.sum and *.go files, the Go version and
# the build flags. Builds write to a temporary file and rename it into place,
# so a reader never sees a half-written binary; when flock(1) exists, parallel
# runs (e.g. several test packages at once) wait for each other instead of
# building twice.
set -euo pipefail

die() { echo "build-test-tools: error: $*" >&2; exit 1; }
say() { echo "build-test-tools: $*" >&2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || die "cannot find the repository root"
bin="$root/.cache/bin"
mkdir -p "$bin" || die "cannot create $bin"

command -v go >/dev/null 2>&1 || die "the go command is not on PATH; install Go (see go.mod for the version)"

if [ -z "${BUILD_TEST_TOOLS_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
	export BUILD_TEST_TOOLS_LOCKED=1
	exec flock "$bin/.build.lock" bash "$0" "$@"
fi

# The tool modules are nested modules; a go.work elsewhere must not pull them in.
export GOWORK=off
export CGO_ENABLED=0

tools=()
for arg in "$@"; do
	if [ "$arg" = bench ]; then
		tools+=(registry oras regctl)
	else
		tools+=("$arg")
	fi
done
[ ${#tools[@]} -gt 0 ] || tools=(tofu tofu-1.12 provider-echo)

# stamp_of DIR FLAGS... prints the hash of everything that decides the binary.
stamp_of() {
	local dir=$1
	shift
	{
		go version
		printf 'flags: %s\n' "$*"
		(cd "$dir" && find . -name '*.go' -o -name go.mod -o -name go.sum | LC_ALL=C sort | xargs sha256sum)
	} | sha256sum | cut -d' ' -f1
}

# build NAME MODULE_DIR PACKAGE OUTPUT FLAGS...
build() {
	local name=$1 dir=$2 pkg=$3 out=$4
	shift 4
	[ -f "$dir/go.mod" ] || die "$name: $dir/go.mod is missing"
	local stamp
	stamp=$(stamp_of "$dir" "$pkg" "$@") || die "$name: cannot hash the sources in $dir"
	if [ -x "$out" ] && [ -f "$out.stamp" ] && [ "$(cat "$out.stamp")" = "$stamp" ]; then
		say "$name: up to date: ${out#"$root"/}"
		return 0
	fi
	say "$name: building ${out#"$root"/} from ${dir#"$root"/} ($pkg)"
	local start=$SECONDS tmp="$out.tmp.$$"
	if ! (cd "$dir" && go build -o "$tmp" "$@" "$pkg"); then
		rm -f "$tmp"
		die "$name: go build of $pkg in ${dir#"$root"/} failed (see the go output above)"
	fi
	mv -f "$tmp" "$out" || die "$name: cannot move the binary to $out"
	echo "$stamp" >"$out.stamp"
	say "$name: built ${out#"$root"/} in $((SECONDS - start))s"
}

for tool in "${tools[@]}"; do
	case $tool in
	tofu)
		# version.dev=no drops the "-dev" suffix, as OpenTofu's release builds do,
		# so the CLI reports (and sends in User-Agent) the plain pinned version.
		build tofu "$root/testdata/tofu" github.com/opentofu/opentofu/cmd/tofu "$bin/tofu" \
			-trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no"
		;;
	tofu-1.12)
		build tofu-1.12 "$root/testdata/tofu-1.12" github.com/opentofu/opentofu/cmd/tofu "$bin/tofu-1.12" \
			-trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no"
		;;
	provider-echo)
		build provider-echo "$root/testdata/provider-echo" . "$bin/terraform-provider-echo" \
			-trimpath -ldflags "-s -w"
		;;
	registry)
		build registry "$root/bench/tools" github.com/distribution/distribution/v3/cmd/registry "$bin/registry" \
			-trimpath -ldflags "-s -w"
		;;
	oras)
		build oras "$root/bench/tools" oras.land/oras/cmd/oras "$bin/oras" -trimpath -ldflags "-s -w"
		;;
	regctl)
		build regctl "$root/bench/tools" github.com/regclient/regclient/cmd/regctl "$bin/regctl" -trimpath -ldflags "-s -w"
		;;
	*)
		die "unknown tool '$tool' (known: tofu, tofu-1.12, provider-echo, registry, oras, regctl, bench)"
		;;
	esac
done
