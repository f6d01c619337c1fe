"""Pipeline stages, one module each; dvc.yaml is the map of how they connect."""
