"""Smoke test of bench/instructions.py: a tiny run (plain and idtoken-cookie, 20 requests, 2 logins per
algorithm) under callgrind must finish with no failed request or login and print a count in every
cell. No count is asserted beyond being positive: the figures are for people comparing builds."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def test_instructions_tiny_run():
    assert shutil.which("valgrind"), "valgrind is missing: scripts/install-deps.sh installs it"
    p = subprocess.run([sys.executable, str(BENCH / "instructions.py"), "plain", "idtoken-cookie",
                        "--requests", "20", "--logins", "2"],
                       capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    # Shown by pytest when the test fails: a server that died has its error log and valgrind's log there.
    print(p.stdout)
    print(p.stderr, file=sys.stderr)
    assert p.returncode == 0, "instructions.py failed (%d):\n%s\n%s" % (p.returncode, p.stdout[-3000:], p.stderr[-6000:])
    rows = {line.split()[0]: line.split()[1:] for line in p.stdout.splitlines() if re.match(r"^(plain|idtoken-cookie) ", line)}
    assert set(rows) == {"plain", "idtoken-cookie"}, p.stdout
    number = re.compile(r"^[+]?[\d,]+$")
    assert number.match(rows["plain"][0]) and int(rows["plain"][0].replace(",", "")) > 0
    request, own, rs256, es256, failures = rows["idtoken-cookie"]
    for cell in (request, own, rs256, es256):
        assert number.match(cell) and int(cell.lstrip("+").replace(",", "")) > 0, p.stdout
    assert failures == "0"
