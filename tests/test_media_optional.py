"""psamf.media imports without its optional libraries and names the extra when one is missing."""

from __future__ import annotations

import pytest

from psamf.errors import NotFoundError
from psamf.media._optional import require


def test_require_returns_an_installed_module() -> None:
    assert require("json").dumps([1]) == "[1]"


def test_require_names_the_extra_to_install() -> None:
    with pytest.raises(NotFoundError, match=r"pip install 'psamf\[egemaps\]'") as caught:
        require("psamf_no_such_module", extra="egemaps", purpose="eGeMAPS features")
    assert "psamf_no_such_module" in str(caught.value) and "\n" not in str(caught.value)
