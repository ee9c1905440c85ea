"""Python code generated from `proto/` (run `gridline contracts generate`); never edited by hand."""
