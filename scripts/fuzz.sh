#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after the other, each
# for a fixed time (default 2m): scripts/fuzz.sh [DURATION] [DIRS...]
#   scripts/fuzz.sh            # every target, 2 minutes each
#   scripts/fuzz.sh 10m        # every target, 10 minutes each
#   scripts/fuzz.sh 30s proxy internal/transport/ws
# DURATION is a go test -fuzztime value (30s, 10m, 1h, or 100000x). A new
# failing input is written to the package's testdata/fuzz directory, as go
# test does: commit it with the fix. Stops at the first failure (non-zero
# exit). .ci/run calls it with a short duration.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${1:-2m}"
shift || true
dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
	dirs=(.)
fi

# Targets are found in the sources (no build needed): "dir name" pairs.
targets=()
while IFS= read -r file; do
	dir=$(dirname "$file")
	while IFS= read -r name; do
		targets+=("$dir $name")
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
done < <(find "${dirs[@]}" -name '*_test.go' -not -path '*/testdata/*' -print0 | xargs -0 grep -l '^func Fuzz' | sort)

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${fuzztime} each"
for t in "${targets[@]}"; do
	set -- $t
	echo "== $1 $2"
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "./${1#./}"
done
