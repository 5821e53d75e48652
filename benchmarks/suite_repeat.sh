#!/usr/bin/env bash
# The suite issue's acceptance battery: three fresh-clone `make test` runs and one under a busy
# loop, sharing one fresh venv built without any rerun plugin, then the two once-flaky tests
# looped 10 times under the busy loop. Usage: bash benchmarks/suite_repeat.sh [repo]; the
# results land in $OUT/summary.txt (OUT: a fresh folder under /tmp unless given).
set -u
SRC=${1:-$(git rev-parse --show-toplevel)}
OUT=${OUT:-$(mktemp -d /tmp/suite-repeat.XXXX)}
FV=$OUT/fv
rm -rf $FV
log() { echo "$(date -u +%FT%TZ) $*" >> $OUT/summary.txt; }
hog_on() { python3 -c 'while True: pass' & HOG=$!; }
hog_off() { kill $HOG; }
for i in 1 2 3 4; do
  d=$(mktemp -d $OUT/clone$i.XXXX)
  git clone -q $SRC $d/p
  cd $d/p
  [ $i -eq 4 ] && hog_on
  start=$(date +%s)
  CI=true make test VENV=$FV > $OUT/make_test_$i.log 2>&1
  rc=$?
  end=$(date +%s)
  [ $i -eq 4 ] && hog_off
  log "run $i (hog=$([ $i -eq 4 ] && echo yes || echo no)) rc=$rc wall=$((end-start))s $(tail -1 $OUT/make_test_$i.log)"
  $FV/bin/pip list 2>/dev/null | grep -i rerun >> $OUT/summary.txt || log "no rerun plugin in $FV"
done
cd $d/p
hog_on
for t in "tests/reliability/test_outage.py::test_a_short_outage_is_absorbed_by_retries" "tests/reliability/test_interrupts.py::test_random_interruptions_then_exactly_once"; do
  fails=0
  for k in $(seq 1 10); do
    CI=true $FV/bin/python -m pytest -q -s -p no:cacheprovider "$t" > $OUT/loop_$(basename ${t%%::*} .py)_$k.log 2>&1 || fails=$((fails+1))
    log "loop $t #$k: $(tail -1 $OUT/loop_$(basename ${t%%::*} .py)_$k.log)"
  done
  log "LOOP $t under busy loop: $fails failures of 10"
done
hog_off
log DONE
