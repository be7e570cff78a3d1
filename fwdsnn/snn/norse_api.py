"""The parts of Norse that fwdsnn uses, imported in one place.

Norse's package initialiser imports matplotlib.pyplot for its plotting helpers whenever
matplotlib is installed. fwdsnn never calls them, yet every training, hardware and metrics job
would pay for that import. Norse asks `importlib.util.find_spec("matplotlib")`, which answers
None while `sys.modules` maps the name to None, so matplotlib is hidden for the duration of
Norse's import. If matplotlib is already loaded (a figure job), nothing is hidden.
"""

import sys


def _import_norse_without_plotting() -> None:
    if "matplotlib" in sys.modules:
        import norse.torch  # noqa: F401
        return
    sys.modules["matplotlib"] = None
    try:
        import norse.torch  # noqa: F401
    finally:
        del sys.modules["matplotlib"]


_import_norse_without_plotting()

from norse.torch import LI, LIF  # noqa: E402
from norse.torch.functional.leaky_integrator import LIParameters, LIState  # noqa: E402
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters  # noqa: E402

__all__ = ["LI", "LIF", "LIParameters", "LIState", "LIFFeedForwardState", "LIFParameters"]
