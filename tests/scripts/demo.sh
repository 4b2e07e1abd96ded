#!/usr/bin/env bash
# scripts/demo.sh with BUILD_DIR: every step, training included, runs that build's
# binaries. A copy of the scripts runs with install and build skipped, stub binaries that
# record their calls, and a fake mpirun that starts the binary it is given.
# Usage: demo.sh [SPARSER_RUN]   (the argument is ignored: no real binary runs)
source "$(dirname "$0")/common.bash"

repo=$TMP/repo
mkdir -p "$repo/scripts" "$repo/other/bin"
cp -r "$ROOT/launch" "$repo/"
cp "$ROOT/scripts/demo.sh" "$repo/scripts/"
for s in install_deps build; do printf '#!/bin/sh\nexit 0\n' > "$repo/scripts/$s.sh"; done
for b in parity prep run analyze; do
  cat > "$repo/other/bin/sparser_$b" <<STUB
#!/usr/bin/env bash
echo "\$0" >> '$TMP/calls'
# demo.sh prints the table sparser_analyze writes to --out, the last argument.
if [ $b = analyze ]; then mkdir -p "\$(dirname "\${!#}")" && touch "\${!#}"; fi
STUB
done
chmod +x "$repo"/scripts/*.sh "$repo"/other/bin/*
fake mpirun <<'BODY'
for a in "$@"; do case $a in */sparser_run) exec "$a" ;; esac; done
exit 1
BODY
export MPIRUN=$TMP/bin/mpirun
unset SPARSER_BIN

out=$(BUILD_DIR=other "$repo/scripts/demo.sh" 2>&1); rc=$?
check_eq "BUILD_DIR=other: demo.sh exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || tail -3 <<<"$out"
check "mpirun got other/bin/sparser_run" has_line "$TMP/mpirun.args" other/bin/sparser_run
for b in parity prep run analyze; do
  # bash may give $0 as the full path of a relative command
  check "sparser_$b from other/bin" grep -qE "(^|/repo/)other/bin/sparser_$b\$" "$TMP/calls"
done
check "nothing from build/bin" test "$(cat "$TMP/calls" "$TMP/mpirun.args" 2>/dev/null | grep -c build/bin)" = 0
summary
