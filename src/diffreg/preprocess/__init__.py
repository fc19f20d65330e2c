"""Preprocessing steps, one module each: affine alignment (affine.py), crop/pad (crop.py),
intensity normalisation (intensity.py), skull-stripping (skullstrip.py), resampling to a spacing
(resample.py), 2D slice extraction (slices.py) and before/after QC pictures (qc.py)."""
