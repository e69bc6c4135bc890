"""The Registry of DESIGN.md: register, build, duplicate, unknown with suggestion, bad name, contract."""

import pytest

from ean.registry import ContractError, DuplicateNameError, Registry, RegistryError, UnknownNameError


class Base:
    def __init__(self, channels: int):
        self.channels = channels


def make_registry(**kwargs) -> Registry:
    return Registry("block", contract="Block(channels: int)", **kwargs)


def test_register_and_build_passes_keyword_arguments():
    reg = make_registry()

    @reg.register("s_block")
    class SBlock(Base):
        pass

    built = reg.build("s_block", channels=7)
    assert isinstance(built, SBlock) and built.channels == 7
    assert reg.get("s_block") is SBlock
    assert reg.names() == ["s_block"]
    assert "s_block" in reg and "l_block" not in reg
    assert len(reg) == 1 and list(reg) == ["s_block"]


def test_decorator_returns_the_class_unchanged():
    reg = make_registry()

    class Thing(Base):
        pass

    assert reg.register("thing")(Thing) is Thing


def test_names_are_sorted():
    reg = make_registry()
    for name in ["zeta", "alpha", "mid"]:
        reg.add(name, Base)
    assert reg.names() == ["alpha", "mid", "zeta"]


def test_duplicate_name_is_an_error_naming_both_objects():
    reg = make_registry()
    reg.add("eab", Base)

    class Other(Base):
        pass

    with pytest.raises(DuplicateNameError, match=r"'eab' is already registered .*Base.*Other"):
        reg.add("eab", Other)
    assert reg.get("eab") is Base  # the first registration is kept


def test_unknown_name_lists_valid_names_and_closest_match():
    reg = make_registry()
    for name in ["s_block", "l_block", "incep_block", "eab"]:
        reg.add(name, Base)
    with pytest.raises(UnknownNameError) as info:
        reg.get("incep_blok")
    message = str(info.value)
    assert "unknown block 'incep_blok'" in message
    assert "Did you mean 'incep_block'?" in message
    assert "eab, incep_block, l_block, s_block" in message
    assert info.value.suggestion == "incep_block"
    assert isinstance(info.value, LookupError) and isinstance(info.value, ValueError)


def test_unknown_name_without_close_match_has_no_suggestion():
    reg = make_registry()
    reg.add("eab", Base)
    with pytest.raises(UnknownNameError) as info:
        reg.build("transformer", channels=1)
    assert "Did you mean" not in str(info.value)
    assert info.value.suggestion is None


def test_unhashable_name_is_unknown_not_a_type_error():
    reg = make_registry()
    with pytest.raises(UnknownNameError, match=r"\(none registered\)"):
        reg.get(["eab"])


def test_check_validates_without_building():
    reg = make_registry()
    reg.add("eab", Base)
    reg.check("eab")
    with pytest.raises(UnknownNameError):
        reg.check("EAB")


@pytest.mark.parametrize("bad", ["EAB", "1block", "s-block", "", "s block", "a.b", None])
def test_bad_names_are_rejected(bad):
    reg = make_registry()
    with pytest.raises(RegistryError, match="lowercase identifier"):
        reg.add(bad, Base)


def test_bad_family_name_is_rejected():
    with pytest.raises(RegistryError):
        Registry("Spatial Block", contract="")


def test_contract_base_class_is_checked():
    reg = make_registry(base=Base)

    class NotABlock:
        def __init__(self, channels: int):
            pass

    with pytest.raises(ContractError, match="must subclass Base"):
        reg.add("bad", NotABlock)
    with pytest.raises(ContractError, match="must subclass Base"):
        reg.add("func", lambda channels: Base(channels))
    assert "bad" not in reg


def test_contract_required_arguments_are_checked():
    reg = make_registry(required_args=("channels", "num_segments"))

    class MissingSegments:
        def __init__(self, channels: int):
            pass

    class Complete:
        def __init__(self, channels: int, num_segments: int, extra: float = 1.0):
            pass

    class AcceptsKwargs:
        def __init__(self, **kwargs):
            pass

    with pytest.raises(ContractError, match="does not accept num_segments. Contract: Block"):
        reg.add("missing", MissingSegments)
    reg.add("complete", Complete)
    reg.add("kwargs", AcceptsKwargs)
    assert reg.names() == ["complete", "kwargs"]


def test_non_callable_is_rejected():
    reg = make_registry()
    with pytest.raises(ContractError, match="not a class or function"):
        reg.add("value", 3)


def test_temporarily_registers_then_removes_even_on_error():
    reg = make_registry()
    with reg.temporarily("tmp", Base) as obj:
        assert obj is Base and "tmp" in reg
    assert "tmp" not in reg
    with pytest.raises(RuntimeError), reg.temporarily("tmp", Base):
        raise RuntimeError("boom")
    assert "tmp" not in reg


def test_temporarily_refuses_to_shadow_an_existing_name():
    reg = make_registry()
    reg.add("eab", Base)
    with pytest.raises(DuplicateNameError), reg.temporarily("eab", Base):
        pass
    assert reg.get("eab") is Base


def test_repr_names_family_and_entries():
    reg = make_registry()
    reg.add("eab", Base)
    assert repr(reg) == "Registry('block', names=['eab'])"
