"""Deprecated alias of `pmrfusion.objectives.wasserstein` (IID's L_dc / L_ic); kept only so that
imports written before the rename keep working. Import from `pmrfusion.objectives.wasserstein`."""

from pmrfusion.objectives.wasserstein import *  # noqa: F403
from pmrfusion.objectives.wasserstein import __all__  # noqa: F401
