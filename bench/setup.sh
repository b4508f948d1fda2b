#!/usr/bin/env bash
# What the benchmark needs (wrk, Debian's mod_auth_openidc to compare with) is part of the project's
# one list of packages; run.py calls this when either is missing.
exec "$(dirname "$0")/../scripts/install-deps.sh"
