"""The wheel's contents (everything else is in pyproject.toml): the platform's packages, and the checkout's
templates/, static/ and fixtures/ shipped inside the package as ``powernode/_bundled/<dir>``, where the
settings look for them when there is no checkout around the package."""

from setuptools import find_packages, setup

BUNDLED = ("templates", "static", "fixtures")

setup(
    packages=[
        *find_packages(include=["powernode", "powernode.*", "apps", "apps.*"]),
        *(f"powernode._bundled.{name}" for name in BUNDLED),
    ],
    package_dir={f"powernode._bundled.{name}": name for name in BUNDLED},
    package_data={f"powernode._bundled.{name}": ["**/*"] for name in BUNDLED},
    exclude_package_data={"": ["__pycache__/*", "*.pyc"]},
)
