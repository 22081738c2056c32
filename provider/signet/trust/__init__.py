"""What is trusted (model), how it is loaded from YAML (config), and the reloading store (store)."""
