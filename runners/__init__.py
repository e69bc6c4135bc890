"""runners layer of the EAN ablation framework (see DESIGN.md)."""
