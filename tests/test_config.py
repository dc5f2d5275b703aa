"""Settings precedence: defaults < file < environment < CLI; bad values are clear errors."""

from __future__ import annotations

import json

import pytest

from bandsync_desktop import config


def test_precedence(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"port": 4000, "host": "127.0.0.1", "unknown": 1}))
    env = {"BANDSYNC_PORT": "4001", "BANDSYNC_REDIS_URL": "redis://x:1/0"}
    s = config.load({"port": 4002}, settings_file=path, environ=env)
    assert (s.port, s.host, s.redis_url) == (4002, "127.0.0.1", "redis://x:1/0")
    s = config.load({}, settings_file=path, environ=env)
    assert s.port == 4001
    s = config.load({}, settings_file=path, environ={})
    assert s.port == 4000
    assert config.load({}, environ={}).port == 3001


def test_bad_values_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="BANDSYNC_PORT"):
        config.load({}, environ={"BANDSYNC_PORT": "lots"})
    with pytest.raises(ValueError, match="unknown settings"):
        config.Settings().with_overrides({"nope": 1})
    bad = tmp_path / "s.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        config.load({}, settings_file=bad, environ={})


def test_env_tuple_and_empty_optional():
    s = config.load(
        {}, environ={"BANDSYNC_CORS_ORIGINS": "http://a, http://b", "BANDSYNC_REDIS_URL": ""}
    )
    assert s.cors_origins == ("http://a", "http://b")
    assert s.redis_url is None


def test_list_settings_from_a_file_become_tuples_and_go_back_as_lists(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"allowed_hosts": ["stage.lan"], "connection_cap_exempt": []}))
    s = config.load({}, settings_file=path, environ={"BANDSYNC_MAX_CONNECTIONS_PER_ADDRESS": "8"})
    assert s.allowed_hosts == ("stage.lan",) and s.connection_cap_exempt == ()
    assert s.max_connections_per_address == 8
    assert hash(s)  # frozen and hashable: no lists inside
    data = s.to_dict()
    assert data["allowed_hosts"] == ["stage.lan"] and data["cors_origins"] == []
    json.dumps(data)
