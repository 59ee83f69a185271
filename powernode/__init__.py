"""powernode: a Django platform that turns node instances into managed container hosts."""

# The one version source: pyproject.toml reads it (setuptools dynamic version); /healthz, the API schema
# and the admin show it. Bump it with a CHANGELOG.md entry.
__version__ = "0.16.0"
