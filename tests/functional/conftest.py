"""The packaged service, once per session: as deployed by default, and as a deployer who sets
every option (tests/packaging.py CONFIGURED)."""
import pytest

from tests import packaging


@pytest.fixture(scope="session")
def packaged(tmp_path_factory):
    return packaging.package(tmp_path_factory.mktemp("package"))


@pytest.fixture(scope="session")
def packaged_configured(tmp_path_factory):
    return packaging.package(tmp_path_factory.mktemp("package-configured"), packaging.CONFIGURED)
