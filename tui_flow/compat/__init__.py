"""Modules that workflow files written for other tools import: `cloaca` (Cloacina's Python
package) and `taskinity`. The loader provides them to workflow files only, while it executes
them, and never in place of a real install (see loader.py)."""
