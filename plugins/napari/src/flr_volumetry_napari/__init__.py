"""napari plugin of flr-volumetry: review scans, segment, define the remnant, measure live.

Every computation is done by the core package ``flr_volumetry``; this
package holds the reader, writer, sample data and the widgets. The
widgets are docked from napari's Plugins menu (FLR volumetry).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
