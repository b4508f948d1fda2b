#!/usr/bin/env python3
"""The demo application behind the protected location: shows what the module passed it."""
import html
import os

user = os.environ.get("REMOTE_USER", "")
claims = sorted((k[len("IDTOKEN_CLAIM_"):], v) for k, v in os.environ.items() if k.startswith("IDTOKEN_CLAIM_"))
rows = "".join("<tr><td>%s</td><td>%s</td></tr>" % (html.escape(k), html.escape(v)) for k, v in claims)
print("Content-Type: text/html; charset=utf-8")
print()
print("""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Logged in</title></head><body>
<h1>Hello, %s</h1>
<p>REMOTE_USER = <code id="remote-user">%s</code> (AUTH_TYPE %s)</p>
<h2>Claims passed by mod_auth_idtoken</h2><table>%s</table>
</body></html>""" % (html.escape(os.environ.get("IDTOKEN_CLAIM_name", user)), html.escape(user),
                     html.escape(os.environ.get("AUTH_TYPE", "")), rows))
