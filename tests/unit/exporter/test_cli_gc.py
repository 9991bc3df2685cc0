"""The CLI's garbage-collection settings: off for the imports, their objects frozen, then on again."""

from __future__ import annotations

import gc

from exporter import cli


def test_after_the_imports_collection_is_back_on_with_their_objects_frozen() -> None:
    gc.disable()  # as main() does
    try:
        cli._imported()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_in_process_callers_keep_their_collection_as_it_is() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    cli._imported()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
