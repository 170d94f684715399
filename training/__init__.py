"""Training helpers for Tandem's small models (SQuAD-format data, the extractive reader)."""
