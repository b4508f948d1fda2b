"""`apache2 -t` (apachectl configtest) on good and bad module settings."""


def test_good_configuration_passes(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False)
    code, out = a.configtest()
    assert code == 0, out
    assert "Syntax OK" in out


def test_discovery_url_that_is_not_a_url_fails(apache_factory, provider):
    a = apache_factory("not-a-url", start=False)
    code, out = a.configtest()
    assert code != 0, out
    assert "Syntax OK" not in out
    assert "IDTokenDiscoveryURL" in out, out


def test_missing_session_key_file_fails_and_says_how_to_make_one(apache_factory, provider):
    a = apache_factory(provider.discovery_url, start=False, write_key=False)
    assert not a.key_file.exists()
    code, out = a.configtest()
    assert code != 0, out
    assert "Syntax OK" not in out
    assert str(a.key_file) in out or "IDTokenSessionKeyFile" in out, out
    assert "openssl rand" in out, out
