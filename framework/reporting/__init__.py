"""Results a researcher reads: comparison tables of a study's trials, grouped and over seeds."""
