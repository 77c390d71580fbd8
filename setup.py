"""What pyproject.toml cannot say: the package layout twistd's plugin discovery needs.

twistd finds ``twistd txrealtime`` by listing ``twisted/plugins/`` folders under sys.path entries,
not by importing. With the root mapped to "." (a src-like layout to setuptools), ``pip install -e .``
puts the checkout on sys.path, as ``editable_mode=compat`` does, where by default it installs an
import hook that twistd's listing never sees. Regular wheels are unchanged. Everything else
(name, version, dependencies, extras, entry points) is in pyproject.toml's ``[project]`` table.
"""

from setuptools import find_packages, setup

setup(
    package_dir={"": "."},
    packages=find_packages(include=["txrealtime", "txrealtime.*"]) + ["twisted.plugins"],
    package_data={
        "txrealtime": ["py.typed", "socketio/client_dist/*"],
        "twisted": ["plugins/txrealtime_plugin.py"],
    },
)
