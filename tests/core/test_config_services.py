"""[services.NAME] and [events]: parsed, env:NAME read, secrets never shown, one-line errors for bad tables."""

from __future__ import annotations

import pytest

from autocall.config import load_config
from autocall.errors import ConfigError
from autocall.services_config import check_services

GOOD = '''
[services.crm]
url = "https://crm.internal/api/"
headers = { Authorization = "env:CRM_TOKEN", X-Tenant = "acme" }
signing_secret = "env:CRM_SIGNING_SECRET"
max_concurrent = 5

[events]
call_ended = { service = "crm", path = "/autocall/calls" }
campaign_finished = { service = "crm", path = "/autocall/campaigns" }
'''
ENV = {"CRM_TOKEN": "Bearer tok-123456", "CRM_SIGNING_SECRET": "sig-abcdef"}


def load(tmp_path, text, environ=ENV):
    (tmp_path / "autocall.toml").write_text(text, encoding="utf-8")
    return load_config(environ=dict(environ), cwd=str(tmp_path))


def test_services_and_events_are_read(tmp_path):
    config = load(tmp_path, GOOD)
    crm = config.services["crm"]
    assert crm.url == "https://crm.internal/api" and crm.max_concurrent == 5
    assert crm.header_values() == {"Authorization": "Bearer tok-123456", "X-Tenant": "acme"}
    assert crm.signing_secret.value == "sig-abcdef" and crm.problems() == []
    assert {name: (route.service, route.path) for name, route in config.events.items()} == \
        {"call_ended": ("crm", "/autocall/calls"), "campaign_finished": ("crm", "/autocall/campaigns")}


def test_secrets_are_never_shown(tmp_path):
    config = load(tmp_path, GOOD)
    shown = " ".join([repr(config), str(config.describe()), repr(config.services), str(config.services["crm"]),
                      f"{config.services['crm'].signing_secret}", repr(config.services["crm"].headers)])
    assert "tok-123456" not in shown and "sig-abcdef" not in shown and "acme" not in shown
    assert config.describe()["services"]["crm"]["headers"] == {"Authorization": "***", "X-Tenant": "***"}


def test_a_missing_environment_variable_stops_only_what_talks_to_services(tmp_path):
    config = load(tmp_path, GOOD, environ={"CRM_TOKEN": "x"})          # loading still works (autocall calls)
    with pytest.raises(ConfigError) as error:
        check_services(config.services)
    assert str(error.value) == ("[services.crm] signing_secret = env:CRM_SIGNING_SECRET, but CRM_SIGNING_SECRET "
                                "is not set; export it before starting AutoCall")


@pytest.mark.parametrize("text, message", [
    ('[services.crm]\nurl = "ftp://x"', "url = 'ftp://x' is not an http:// or https:// URL with a host"),
    ('[services.crm]\nurl = "https://u:p@crm/api"', "may not carry a query, a fragment or a user name"),
    ('[services.crm]\nurll = "https://crm"', "unknown key 'urll' (did you mean 'url'?)"),
    ('[services.crm]\nurl = "https://crm"\nmax_concurrent = 0', "max_concurrent = 0 is not valid"),
    ('[services.crm]\nurl = "https://crm"\nheaders = { Host = "x" }', "the header 'Host' is set by AutoCall"),
    ('[services.crm]\nurl = "https://crm"\nheaders = { "Bad Name" = "x" }', "'Bad Name' is not a valid header"),
    ('[services.crm]\nurl = "https://crm"\nheaders = { A = "env:" }', 'names no variable'),
    ('[services.crm]\nurl = "https://crm"\nheaders = { A = 5 }', "expected a string"),
    ('[services."my-crm"]\nurl = "https://crm"', "a service name is letters, digits and _"),
    ('[services.crm]\nurl = "https://crm"\n[events]\ncall_end = { service = "crm", path = "/c" }',
     "unknown event 'call_end' (did you mean 'call_ended'?)"),
    ('[services.crm]\nurl = "https://crm"\n[events]\ncall_ended = { service = "crn", path = "/c" }',
     "service 'crn' is not configured (did you mean 'crm'?)"),
    ('[services.crm]\nurl = "https://crm"\n[events]\ncall_ended = { service = "crm", path = "c" }',
     "path = 'c' must start with /"),
    ('[services.crm]\nheaders = { A = "b" }\n[events]\ncall_ended = { service = "crm", path = "/c" }',
     "[services.crm] has no url"),
    ('[events]\ncall_ended = "crm"', "must be { service = "),
])
def test_bad_tables_are_one_clear_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "autocall.toml")) or str(error.value).startswith("autocall")


def test_services_cannot_come_from_plain_environment_variables(tmp_path):
    with pytest.raises(ConfigError, match=r"AUTOCALL_SERVICES: \[services\] is set in the configuration file only"):
        load_config(environ={"AUTOCALL_SERVICES": "x"}, cwd=str(tmp_path))
