#!/usr/bin/env bash
# Runs every test: the Swift core's unit tests, the end-to-end suite against a real Apache, the demo
# provider, Redis and headless Chromium (the tests start and stop them), and a smoke run of the
# benchmark harness.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage's wall time, printed at the end, so a slow CI run says where its minutes went.
timings=()
last_stage=""
stage_started=$SECONDS
stage() {
  if [ -n "$last_stage" ]; then timings+=("$(printf '%5d s  %s' $((SECONDS - stage_started)) "$last_stage")"); fi
  last_stage="$1"
  stage_started=$SECONDS
  [ -z "$1" ] || echo "== $1"
}
stage "install dependencies"
./scripts/install-deps.sh
export PATH="/opt/swift/usr/bin:$PATH"

# LemonLDAP::NG (for the interop test) installs while the module builds: apt waits on the network and
# dpkg, the build on the CPU. Its output is shown once both are done.
stage "build (release library + Apache module), LemonLDAP::NG installing beside it (Tests/interop/lemonldap)"
lemonldap_log=$(mktemp)
bash Tests/interop/lemonldap/install.sh >"$lemonldap_log" 2>&1 &
lemonldap_pid=$!
make module
lemonldap_status=0
wait "$lemonldap_pid" || lemonldap_status=$?
cat "$lemonldap_log"
rm -f "$lemonldap_log"
if [ "$lemonldap_status" -ne 0 ]; then
  echo "installing LemonLDAP::NG failed ($lemonldap_status)" >&2
  exit 1
fi
stage "unit tests (Swift core)"
swift test
# The module must work in every MPM Debian ships: the whole suite under event, then all but the
# browser tests (they exercise Chromium, not the MPM) under prefork and worker. The suites mostly wait
# (on Apache, the provider, the browser: about a third of 2 cores each), so event runs beside prefork
# then worker, each Apache on its own free port and folder; each log is printed when its run is done.
# Every run goes ahead even when another failed; the script fails if any did.
failed=()
# Files whose tests do not depend on the MPM (the provider alone, configtest, token validation) run
# under event only.
same_under_every_mpm=(test_provider.py test_configtest.py test_docs_examples.py test_validation.py)
ignore=()
for f in "${same_under_every_mpm[@]}"; do ignore+=(--ignore "Tests/e2e/$f"); done
# worker has event's threads in prefork's kind of child: the whole suite under event (threads) and
# prefork (processes) covers both; under worker, the files where how the MPM runs children and
# connections shows (restarts, faults under load, stores shared by processes, the MPM check itself).
worker_files=(test_mpm.py test_restart.py test_faults.py test_store.py test_sessions.py test_login_flow.py
  test_redis.py test_metrics.py)
stage "end-to-end tests: event MPM (real Apache, demo provider, headless Chromium) beside prefork then worker (all but the browser tests; worker: the files where the MPM matters)"
e2e_logs=$(mktemp -d)
# Each run leaves its output in e2e_logs/MPM, and MPM.failed beside it when it failed.
(
  E2E_MPM=prefork python3 -m pytest Tests/e2e -q -p no:cacheprovider -m "not browser" "${ignore[@]}" "$@" \
    >"$e2e_logs/prefork" 2>&1 || touch "$e2e_logs/prefork.failed"
  E2E_MPM=worker python3 -m pytest -q -p no:cacheprovider -m "not browser" "${worker_files[@]/#/Tests/e2e/}" "$@" \
    >"$e2e_logs/worker" 2>&1 || touch "$e2e_logs/worker.failed"
) &
E2E_MPM=event python3 -m pytest Tests/e2e -q -p no:cacheprovider "$@" >"$e2e_logs/event" 2>&1 || touch "$e2e_logs/event.failed"
wait $!
for mpm in event prefork worker; do
  echo "-- $mpm MPM"
  cat "$e2e_logs/$mpm"
  if [ -e "$e2e_logs/$mpm.failed" ]; then failed+=("$mpm"); fi
done
rm -rf "$e2e_logs"
stage "package tests (the .deb on this machine's Apache; the demo as a newcomer runs it)"
python3 -m pytest Tests/package -q -p no:cacheprovider || failed+=(package)
stage "benchmark harness smoke run (one short round; no timing is asserted)"
python3 -m pytest bench/test_bench_smoke.py bench/test_instructions_smoke.py -q -p no:cacheprovider || failed+=(bench)
stage "soak harness smoke run (2x10^4 requests, 200 logins; no timing is asserted)"
python3 -m pytest bench/test_soak_smoke.py -q -p no:cacheprovider || failed+=(soak)
stage "stop/start stress smoke run (four cycles per MPM under load; httpd's own stop race is reported, not failed)"
python3 -m pytest bench/test_stopstart_smoke.py -q -p no:cacheprovider || failed+=(stopstart)
stage ""
echo "== wall time per stage (total $SECONDS s)"
printf '%s\n' "${timings[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "tests failed: ${failed[*]}" >&2
  exit 1
fi
