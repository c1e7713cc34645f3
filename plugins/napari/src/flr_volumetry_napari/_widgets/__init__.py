"""The five dock widgets, in the order of the work: liver, remnant, volumetry, growth, export."""

from ._export import ExportWidget
from ._hypertrophy import HypertrophyWidget
from ._liver import LiverWidget
from ._remnant import RemnantWidget
from ._volumetry import VolumetryWidget

__all__ = ["ExportWidget", "HypertrophyWidget", "LiverWidget", "RemnantWidget",
           "VolumetryWidget"]
