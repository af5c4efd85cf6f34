"""The strategy interface every dropout plugin implements, and how several compose in one trial."""
