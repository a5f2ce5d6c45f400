"""Offline datasets built from what installed packages ship (scikit-learn digits, scikit-image photos)."""
