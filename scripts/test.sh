#!/usr/bin/env bash
# Runs every test: the Swift core's unit tests, then the end-to-end suite against a real Apache, the
# demo provider and headless Chromium (the tests start and stop all three themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH="/opt/swift/usr/bin:$PATH"

echo "== build (release library + Apache module)"
make module
echo "== unit tests (Swift core)"
swift test
echo "== end-to-end tests (real Apache, demo provider, headless Chromium)"
python3 -m pytest Tests/e2e -q -p no:cacheprovider "$@"
