"""A step plugin whose module fails to import (a dependency is missing), for the registry tests."""

import formflow_dependency_that_is_not_installed  # noqa: F401
