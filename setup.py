"""Build hook: a wheel carries the repository's data folders (``enricher.datafiles.SHIPPED``) under
``enricher/data/``, where ``enricher.datafiles`` finds them once installed. The folders stay at the top
level as the source of truth; an editable install reads them there, so it copies nothing."""

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _datafiles():
    # loaded by path: importing the enricher package would need its dependencies at build time
    spec = importlib.util.spec_from_file_location("_datafiles", ROOT / "enricher" / "datafiles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildWithData(build_py):
    """build_py, then copy the shipped files into the build's enricher/data/."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        datafiles = _datafiles()
        target = Path(self.build_lib) / "enricher" / datafiles.WHEEL_DATA_DIR.name
        for folder, patterns in datafiles.SHIPPED.items():
            files = sorted({path for pattern in patterns for path in (ROOT / folder).glob(pattern)})
            if not files:
                raise FileNotFoundError(f"nothing to ship in {ROOT / folder} ({', '.join(patterns)})")
            (target / folder).mkdir(parents=True, exist_ok=True)
            for path in files:
                shutil.copy2(path, target / folder / path.name)


setup(cmdclass={"build_py": BuildWithData})
