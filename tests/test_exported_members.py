"""The public surface: every name in ``__all__`` resolves, and nothing public is left out of it."""

from __future__ import annotations

import importlib
import inspect

import pytest

import edgeq

PACKAGES = ["edgeq", "edgeq.runtime", "edgeq.converters", "edgeq.devices"]


def test_top_level_names_resolve_to_what_they_say():
    for name in edgeq.__all__:
        value = getattr(edgeq, name)
        assert value is not None, name
        if name != "__version__":
            assert not inspect.ismodule(value), f"edgeq.{name} resolved to a module, not the {name} it exports"
    assert callable(edgeq.convert) and callable(edgeq.load) and callable(edgeq.profile) and callable(edgeq.compare)
    assert issubclass(edgeq.ModelError, edgeq.EdgeqError)


def test_unknown_top_level_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        edgeq.no_such_thing  # noqa: B018


@pytest.mark.parametrize("package", PACKAGES)
def test_all_matches_the_public_namespace(package):
    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), f"{package}.__all__ has duplicates"
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names {name!r}, which does not exist"
    if package == "edgeq":
        return  # resolved lazily; covered above
    public = {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value) and getattr(value, "__module__", "").startswith("edgeq")
    }
    assert public <= exported, f"{package} exposes {sorted(public - exported)} without listing them in __all__"
