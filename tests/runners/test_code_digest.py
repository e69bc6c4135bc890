"""The code digest tagged on every trial run names the sources' contents: ``ean``'s and installed plugins'."""

from __future__ import annotations

import os
from types import SimpleNamespace

from runners import code_digest as digests


def digest_with_plugin(monkeypatch, module: str) -> str:
    monkeypatch.setattr(digests, "plugin_entry_points", lambda: [SimpleNamespace(module=module)])
    return digests.code_digest.__wrapped__()


def test_the_digest_follows_a_plugins_contents_not_its_files_times(tmp_path, monkeypatch):
    package = tmp_path / "my_ean_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    block = package / "my_block.py"
    block.write_text("DILATION = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = digest_with_plugin(monkeypatch, "my_ean_plugin.my_block")
    os.utime(block, (1, 1))
    assert digest_with_plugin(monkeypatch, "my_ean_plugin.my_block") == before  # touched, not changed
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stale.py").write_text("x = 1\n")
    assert digest_with_plugin(monkeypatch, "my_ean_plugin.my_block") == before  # compiled files are not sources
    block.write_text("DILATION = 2\n")
    assert digest_with_plugin(monkeypatch, "my_ean_plugin.my_block") != before


def test_a_plugin_module_is_read_for_its_contents(tmp_path, monkeypatch):
    module = tmp_path / "lone_plugin.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    module.write_text("A = 1\n")
    first = digest_with_plugin(monkeypatch, "lone_plugin")
    module.write_text("A = 2\n")
    assert digest_with_plugin(monkeypatch, "lone_plugin") != first
    monkeypatch.setattr(digests, "plugin_entry_points", lambda: [])
    assert digests.code_digest.__wrapped__().startswith("sha256:")


def test_the_note_on_results_of_other_code_names_the_files_that_differ(tmp_path, monkeypatch, request):
    """A new variant is a file added and its family's ``__init__.py`` changed: the note says so, rather than
    that the code changed, where this machine computed the older code's digest."""
    request.addfinalizer(digests.code_digest.cache_clear)  # the next test's digest is this process's own again
    monkeypatch.setenv("EAN_CACHE_DIR", str(tmp_path / "cache"))
    package = tmp_path / "my_ean_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "blocks.py").write_text("A = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(digests, "plugin_entry_points", lambda: [SimpleNamespace(module="my_ean_plugin")])
    digests.code_digest.cache_clear()
    then = digests.code_digest()
    (package / "__init__.py").write_text("from my_ean_plugin import extra\n")
    (package / "extra.py").write_text("B = 2\n")
    (package / "blocks.py").unlink()
    digests.code_digest.cache_clear()
    assert digests.code_digest() != then
    note = digests.other_code_note(["s/row/seed0"], [then])
    since = (
        "since them, changed: my_ean_plugin/__init__.py; added: my_ean_plugin/extra.py; "
        "removed: my_ean_plugin/blocks.py)"
    )
    assert since in note and "s/row/seed0" in note
    assert "ean or a plugin changed since" in digests.other_code_note(["s/row/seed0"], ["sha256:0123456789abcdef"])
