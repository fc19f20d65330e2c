"""Data: the embedded toy population (toy.py, built from anatomy.py with deform.py), the
samplesheet schema and its validation (samplesheet.py), registration pairs (pairs.py), and one
adapter per public dataset (adapters/)."""
