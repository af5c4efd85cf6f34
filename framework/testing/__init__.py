"""What plugin authors test with: the strategy contract suite and small stand-in models."""
