"""Every Apache configuration block of README.md, docs/*.md and demo/provider/README.md, passed through
`apache2 -t` with the module loaded: an admin copies them as they are. Placeholders are filled the way an
admin would (`<client id>` becomes a word, the key file a real one, `/app` this server's protected
`/protected`); a block with only per-directory directives goes inside a <Location> (the context its
directives' reference entries give); a block with a whole site (provider, client, redirect URI) stands
alone, any other joins this server's four essential directives. A block meant to fail is preceded by
`<!-- configtest: fails "text" -->` and must fail with that text in the output."""

import re
from pathlib import Path

import pytest

from harness import APACHE_MODULES, issue_certificate, make_ca

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "demo" / "provider" / "README.md"]
FAILS = re.compile(r'<!--\s*configtest:\s*fails\s+"([^"]+)"\s*-->\s*$')
ESSENTIAL = ("IDTokenDiscoveryURL", "IDTokenClientID", "IDTokenRedirectURI", "IDTokenSessionKeyFile")
SECTION = re.compile(r"^\s*</?[A-Za-z]")


def blocks():
    """(id, text, expected failure or None) for every ```apache block."""
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```apache":
                start = i
                j = i + 1
                while j < len(lines) and lines[j].strip() != "```":
                    j += 1
                before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
                m = FAILS.search(before)
                found.append(("%s:%d" % (path.relative_to(ROOT), start + 1), "\n".join(lines[start + 1:j]),
                              m.group(1) if m else None))
                i = j
            i += 1
    return found


def directory_only_directives():
    """The IDToken* directives whose reference entry gives no server context."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    names = set()
    for m in re.finditer(r"^### (IDToken\w+)\n(.*?)(?=^### |\Z)", text, re.S | re.M):
        context = re.search(r"\*\*Context:\*\*\s*(.+)", m.group(2))
        if context and "server config" not in context.group(1):
            names.add(m.group(1))
    return names


DIRECTORY_ONLY = directory_only_directives() | {"Require", "AuthType", "AuthzSendForbiddenOnFailure"}


def directives_of(text):
    return [line.split()[0] for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and not SECTION.match(line)]


@pytest.fixture(scope="module")
def redis_files(tmp_path_factory):
    """The files the Redis examples name (/etc/apache2/redis-*), made here: a password file, a CA, a
    client certificate and its key."""
    folder = tmp_path_factory.mktemp("docs-redis")
    ca = make_ca(folder, "Docs CA")
    cert, key = issue_certificate(folder, ca, "docs-client", [], client=True)
    password = folder / "redis.password"
    password.write_text("docs-example-password\n")
    password.chmod(0o600)
    return {"/etc/apache2/redis-idtoken.password": password, "/etc/apache2/redis-ca.pem": ca[0],
            "/etc/apache2/redis-client.pem": cert, "/etc/apache2/redis-client.key": key}


def fill(text, key_file, redis_files=None):
    """An admin's values for the placeholders."""
    out = []
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        head, rest = line[:indent + 1], line[indent + 1:]
        # A <...> that does not open the line is a placeholder, not a section.
        rest = re.sub(r"<([^<>\n]+)>", lambda m: re.sub(r"[^A-Za-z0-9.-]+", "-", m.group(1)).strip("-"), rest)
        out.append(head + rest)
    text = "\n".join(out)
    text = re.sub(r"/etc/apache2/idtoken[\w.-]*\.key", str(key_file), text)
    for placeholder, made in (redis_files or {}).items():
        text = text.replace(placeholder, str(made))
    text = re.sub(r"(?<![\w.])/app(?=[/\"\s]|$)", "/protected", text, flags=re.M)
    text = text.replace("/usr/lib/apache2/modules/", str(APACHE_MODULES) + "/")
    # The harness loads this build of the module.
    return "\n".join(line for line in text.splitlines() if not line.startswith("LoadModule auth_idtoken_module"))


def configuration(text, apache):
    """(directives, extra) for the harness: the block in the place an admin would put it."""
    names = directives_of(text)
    extra = ""
    if any(n.startswith("OIDC") for n in names):
        extra = "LoadModule auth_openidc_module %s/mod_auth_openidc.so\n" % APACHE_MODULES
    if all(n in names for n in ESSENTIAL):
        return text, extra
    if names and all(n in DIRECTORY_ONLY for n in names) and not re.search(r"^\s*<Location", text, re.M):
        return apache.module_directives(), extra + '<Location "/protected/docs">\n%s\n</Location>' % text
    base = [line for line in apache.module_directives().splitlines() if line.split()[0] not in names]
    return "\n".join(base), extra + text


BLOCKS = blocks()


def test_the_docs_have_configuration_blocks():
    assert len(BLOCKS) >= 50, [b[0] for b in BLOCKS]


@pytest.mark.parametrize("where,text,fails", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_configuration_block_passes_configtest(where, text, fails, provider_server, apache_factory, redis_files):
    a = apache_factory(provider_server.discovery_url, start=False)
    directives, extra = configuration(fill(text, a.key_file, redis_files), a)
    a.write_config(directives=directives, extra=extra)
    code, out = a.configtest()
    if fails:
        assert code != 0 and fails in out, "%s should fail with %r:\n%s\n--- config:\n%s" % (where, fails, out, extra)
    else:
        assert code == 0, "%s fails apache2 -t:\n%s\n--- block as tested:\n%s\n%s" % (where, out, directives, extra)
