"""One module per pipeline stage (DESIGN.md, "Pipeline stages"); each holds its stage class and the
registry of its providers."""
