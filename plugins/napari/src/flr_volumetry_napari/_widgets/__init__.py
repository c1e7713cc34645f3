"""The five dock widgets, in the order of the work: liver, remnant, volumetry, growth, export."""

from ._volumetry import VolumetryWidget

__all__ = ["VolumetryWidget"]
