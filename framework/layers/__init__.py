"""Layer-level building blocks that strategies put into models (e.g. LayerDrop stacks)."""
