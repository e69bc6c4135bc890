"""Specs are data, by construction (``study.policy``): no Hydra settings from any source of overrides, no
resolver call however it is spelled, and group files checked after composition and before resolving."""

from __future__ import annotations

import copy
import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from runners.compose import CompositionError, check_overrides, compose_config, hydra_context
from runners.plan import PlanError, build_plan
from runners.run import EXIT_BAD_INPUT, main
from runners.validate import check_trial_config
from study.locations import CONF_DIR
from study.policy import override_problem, text_problem
from study.spec import SpecError, parse_spec
from tests.runners.conftest import tiny_spec

HYDRA_FORMS = [
    "hydra.searchpath=[file:///tmp/x]",
    "+hydra.searchpath=[file:///tmp/x]",
    "++hydra.run.dir=/tmp/x",
    "hydra/job_logging=none",
    "+hydra/job_logging=none",
    "~hydra.x",
    "~hydra",
    " hydra.searchpath=[file:///tmp/x]",
    "\thydra.searchpath=[file:///tmp/x]",
    "+ hydra.searchpath=[file:///tmp/x]",
    "hydra .searchpath=[file:///tmp/x]",
    "block@hydra=eab",
    "block@_global_.hydra=eab",
    "/hydra/job_logging=none",
]
NOT_HYDRA = ["block=eab", "model.hydra_like=1", "data.root=hydra/videos", "+model.block_options.pool=max"]

RESOLVER_FORMS = [
    "${oc.env:HOME}",
    "${ oc.env:HOME}",
    "${oc.env :HOME}",
    "${\toc.env:HOME}",
    "${\noc.env:HOME}",
    "${oc . env:HOME}",
    "${a.${oc.env:X}}",
    "${oc.env:${a.b}}",
    "\\${oc.env:X}",  # escaped: resolves to the text of a call, which a later config would run
    "\\\\${oc.env:X}",  # an escaped backslash, then a real call
    "${${a}:X}",  # a resolver whose name is interpolated
    "${${a.${b}}:X}",  # ... with nested braces (OmegaConf's grammar finds it)
    "prefix ${env:HOME} suffix",
    "${oc.decode:'{a: 1}'}",
]
PLAIN_INTERPOLATIONS = ["${a.b}", "${model.num_segments}", "${.sibling}", "${a}:${b}", "http://host:80/x", "a ${b} c"]


# -- the rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("override", HYDRA_FORMS)
def test_every_spelling_of_a_hydra_override_is_refused(override):
    assert "Hydra's own settings" in override_problem(override)


@pytest.mark.parametrize("override", NOT_HYDRA)
def test_project_overrides_are_not_mistaken_for_hydra_ones(override):
    assert override_problem(override) is None


@pytest.mark.parametrize("text", RESOLVER_FORMS)
def test_every_spelling_of_a_resolver_call_is_refused(text):
    assert "calls a resolver" in text_problem(text)
    assert "calls a resolver" in override_problem(f"+model.x={text}")


@pytest.mark.parametrize("text", PLAIN_INTERPOLATIONS)
def test_plain_interpolations_stay_allowed(text):
    assert text_problem(text) is None
    assert override_problem(f"model.x={text}") is None


# -- every source of overrides --------------------------------------------------------------------------

GOOD = tiny_spec([{"id": "base", "label": "Base", "overrides": ["block=none"]}])
GOOD["profiles"] = {"smoke": ["model.num_segments=4"]}


def place(data: dict, source: str, override: str) -> dict:
    """``data`` with ``override`` added where ``source`` says: the spec's common list, a profile or a row."""
    data = copy.deepcopy(data)
    target = {"spec": data["overrides"], "profile": data["profiles"]["smoke"], "row": data["rows"][0]["overrides"]}
    target[source].append(override)
    return data


@pytest.mark.parametrize("source", ["spec", "profile", "row"])
@pytest.mark.parametrize("override", HYDRA_FORMS)
def test_the_spec_loader_refuses_hydra_overrides_in_each_of_its_lists(source, override):
    with pytest.raises(SpecError, match="Hydra's own settings") as err:
        parse_spec(place(GOOD, source, override), source="study.yaml")
    assert ("row 'base'" in str(err.value)) == (source == "row")


@pytest.mark.parametrize("source", ["spec", "profile", "row"])
def test_the_spec_loader_refuses_resolver_calls_in_each_of_its_lists(source):
    for text in RESOLVER_FORMS:
        with pytest.raises(SpecError, match="calls a resolver"):
            parse_spec(place(GOOD, source, f"model.pretrained={text}"), source="study.yaml")


def test_labels_may_mention_hydra_but_no_string_of_a_spec_may_call_a_resolver():
    data = copy.deepcopy(GOOD)
    data["rows"][0]["label"] = "hydra/x=1"
    assert parse_spec(data).rows[0].label == "hydra/x=1"
    data["title"] = "${ oc.env:HOME}"
    with pytest.raises(SpecError, match="title.*calls a resolver"):
        parse_spec(data)


@pytest.fixture
def evil_searchpath(tmp_path) -> Path:
    """A folder with a group file that Hydra composes only if its search path is changed."""
    (tmp_path / "evil" / "block").mkdir(parents=True)
    (tmp_path / "evil" / "block" / "evil.yaml").write_text("# @package model\nblock: none\nblock_options: {}\n")
    return tmp_path / "evil"


@pytest.mark.parametrize("source", ["spec", "profile", "row", "cli"])
def test_plan_refuses_hydra_overrides_from_every_source_even_past_the_loader(source, evil_searchpath, tmp_path):
    """``compose_config`` checks every override just before Hydra reads it: a spec built without the loader
    (or an override list the loader never saw) cannot change Hydra's search path either."""
    overrides = [f"hydra.searchpath=[file://{evil_searchpath}]", "block=evil"]
    spec = parse_spec(GOOD)
    profile, cli = [], []
    if source == "spec":
        spec = dataclasses.replace(spec, overrides=(*spec.overrides, *overrides))
    elif source == "row":
        spec = dataclasses.replace(spec, rows=(dataclasses.replace(spec.rows[0], overrides=tuple(overrides)),))
    else:
        (profile if source == "profile" else cli).extend(overrides)
    with pytest.raises(PlanError, match="Hydra's own settings"):
        build_plan(spec, profile, cli, [0], tmp_path)


@pytest.mark.parametrize("override", ["hydra.searchpath=[file:///tmp/x]", " hydra/job_logging=none", "block@hydra=eab"])
def test_the_command_line_refuses_hydra_overrides(override, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(GOOD))
    db = tmp_path / "mlflow.db"
    assert main([str(spec), "--mlflow-uri", f"sqlite:///{db}", "--dry-run", override]) == EXIT_BAD_INPUT
    assert "Hydra's own settings" in capsys.readouterr().err
    assert not db.exists()


# -- group files: checked after composition, before resolving -------------------------------------------

SECRET = "s3cr3t-value-from-the-environment"


@pytest.fixture
def spy():
    """A resolver that records every call: the tests assert it never runs."""
    calls = []
    OmegaConf.register_new_resolver("policy_spy", lambda *args: calls.append(args) or "spied", replace=True)
    yield calls
    OmegaConf.clear_resolver("policy_spy")


@pytest.fixture
def conf_copy(tmp_path) -> Path:
    return Path(shutil.copytree(CONF_DIR, tmp_path / "conf"))


def add_to_group_file(conf: Path, text: str, name: str = "block/none.yaml") -> None:
    path = conf / name
    path.write_text(path.read_text() + text)


@pytest.fixture
def hydra_without_folder_check(conf_copy):
    """Hydra initialised on the copy without ``hydra_context``'s folder check: what a config source the check
    does not read would give (a search-path plugin's folder). Only ``compose_config``'s check stands."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_copy), version_base="1.3"):
        yield conf_copy
    GlobalHydra.instance().clear()


def test_a_composed_config_is_checked_before_any_resolver_runs(hydra_without_folder_check, spy, monkeypatch):
    monkeypatch.setenv("POLICY_SECRET", SECRET)
    add_to_group_file(hydra_without_folder_check, "secret: ${policy_spy:x}\ntoken: ${ oc.env:POLICY_SECRET}\n")
    with pytest.raises(CompositionError) as err:
        compose_config(["block=none"])
    message = str(err.value)
    assert "before resolving" in message and "'model.secret'" in message and "'model.token'" in message
    assert "calls a resolver" in message
    assert spy == [], "the resolver ran before the check"
    assert SECRET not in message
    assert compose_config(["block=eab"])["model"]["block"] == "eab"  # the other group files compose


def test_a_code_key_in_a_group_file_is_refused_wherever_it_is_read(hydra_without_folder_check):
    add_to_group_file(hydra_without_folder_check, "extra: {_target_: os.system}\n")
    with pytest.raises(CompositionError, match="'model.extra._target_': key '_target_' names Python code"):
        compose_config(["block=none"])
    with (
        pytest.raises(CompositionError, match="block/none.yaml: 'extra._target_': key '_target_'"),
        hydra_context(hydra_without_folder_check),
    ):
        pass


def test_a_group_file_that_calls_a_resolver_is_refused_before_hydra_reads_the_folder(conf_copy, spy):
    """A resolver in a defaults list runs while Hydra composes, before any composed tree exists: the folder's
    files are checked when Hydra is initialised on it."""
    text = (conf_copy / "block/none.yaml").read_text()
    text = text.replace("block: none", "defaults:\n  - /fusion@_here_: ${policy_spy:x}\n  - _self_\nblock: none")
    (conf_copy / "block/none.yaml").write_text(text)
    with pytest.raises(CompositionError) as err, hydra_context(conf_copy):
        compose_config(["block=none"])
    assert "block/none.yaml: 'defaults[0]./fusion@_here_'" in str(err.value)
    assert spy == [], "the resolver ran while Hydra composed"


def test_a_group_file_may_not_set_hydra(conf_copy):
    add_to_group_file(conf_copy, "hydra:\n  searchpath: [file:///tmp/x]\n", "config.yaml")
    with pytest.raises(CompositionError, match="config.yaml: 'hydra' sets Hydra's own"), hydra_context(conf_copy):
        pass


def test_a_defaults_list_may_not_choose_hydra_groups(conf_copy):
    path = conf_copy / "config.yaml"
    path.write_text(path.read_text().replace("  - _self_", "  - override hydra/job_logging: none\n  - _self_"))
    with (
        pytest.raises(CompositionError, match="defaults entry 'override hydra/job_logging=none' sets Hydra"),
        hydra_context(conf_copy),
    ):
        pass


def test_the_project_folder_and_its_plain_interpolations_pass():
    with hydra_context():
        config = compose_config(["data=synthetic"])
    assert config["model"]["num_classes"] == config["data"]["num_classes"] == 10  # ${data.num_classes} resolved


# -- one policy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["${oc.env:HOME}", "${ oc.env:HOME}", "\\${oc.env:X}", "os._target_"])
def test_the_loader_the_override_check_and_the_config_check_agree(text):
    with pytest.raises(SpecError):
        parse_spec(place(GOOD, "row", f"+model.x={text}"))
    with pytest.raises(CompositionError, match=r"override '\+model\.x="):  # the override check, by itself
        check_overrides([f"+model.x={text}"])
    with hydra_context(), pytest.raises(CompositionError, match=r"override '\+model\.x="):  # before Hydra composes
        compose_config([f"+model.x={text}"])
    assert any("model.x" in p for p in check_trial_config({"model": {"x": text}}))


def test_a_folder_problem_stops_the_plan_with_every_problem_listed(monkeypatch, tmp_path):
    import runners.conf_dirs

    monkeypatch.setattr(runners.conf_dirs, "conf_problems", lambda conf_dir: ["block/x.yaml: 'secret': calls"])
    with pytest.raises(PlanError, match="block/x.yaml: 'secret': calls"):
        build_plan(parse_spec(GOOD), [], [], [0], tmp_path)


def test_a_config_file_is_one_delta_over_a_base_of_its_group():
    """DESIGN: configs are small deltas over a base, at most two levels of defaults: a group file may build on
    another file of its group only where that base builds on none."""

    def bases(path: Path) -> list[str]:
        entries = (yaml.safe_load(path.read_text()) or {}).get("defaults", [])
        return [e for e in entries if isinstance(e, str) and e != "_self_" and (path.parent / f"{e}.yaml").is_file()]

    deep = [
        f"{path.relative_to(CONF_DIR)} -> {base} -> {', '.join(bases(path.parent / f'{base}.yaml'))}"
        for path in sorted(CONF_DIR.glob("*/*.yaml"))
        for base in bases(path)
        if bases(path.parent / f"{base}.yaml")
    ]
    assert deep == []
    assert any(bases(path) for path in CONF_DIR.glob("*/*.yaml"))  # the check looks at real deltas
