"""Shipped, trained weights (safetensors) and their cards."""
