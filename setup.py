import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
long_description = (HERE / "README.md").read_text(encoding="utf-8")
# One source for the version: txrealtime/__init__.py (read, not imported: building needs no dependency).
version = re.search(r'^__version__ = "([^"]+)"$', (HERE / "txrealtime" / "__init__.py").read_text("utf-8"), re.M)
if version is None:
    raise RuntimeError("txrealtime/__init__.py has no __version__ = \"...\" line")

setup(
    name="txrealtime",
    version=version.group(1),
    description="Socket.IO v4 (Engine.IO v4) server and client for Twisted",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    # twistd finds `twistd txrealtime` by listing twisted/plugins/ folders under sys.path entries, not
    # by importing. With the root mapped to "." (a src-like layout to setuptools), `pip install -e .`
    # puts the checkout on sys.path, as editable_mode=compat does, where by default it installs an
    # import hook that twistd's listing never sees. Regular wheels are unchanged.
    package_dir={"": "."},
    packages=find_packages(include=["txrealtime", "txrealtime.*"]) + ["twisted.plugins"],
    package_data={
        "txrealtime": ["py.typed", "socketio/client_dist/*"],
        "twisted": ["plugins/txrealtime_plugin.py"],
    },
    install_requires=[
        "twisted[tls]>=23.10",
        "autobahn>=23.1",
        "treq>=23.11",
    ],
    extras_require={
        "redis": ["txredisapi>=1.4.10", "msgpack>=1.0"],
        "bench": [
            "txredisapi>=1.4.10",
            "msgpack>=1.0",
            "python-socketio>=5.11",
            "uvicorn>=0.30",
            "aiohttp>=3.9",
            "matplotlib>=3.8",
            "py-spy>=0.3",
        ],
        "test": [
            "txredisapi>=1.4.10",
            "msgpack>=1.0",
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "python-engineio[client]>=4.9",
            "python-socketio[client]>=5.11",
            "requests",
            "websocket-client",
            "mypy>=1.10",
            "pydoctor>=24.11",
            "ruff>=0.5",
        ],
    },
    entry_points={"pytest11": ["txrealtime = txrealtime.pytest_plugin"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Typing :: Typed",
    ],
)
